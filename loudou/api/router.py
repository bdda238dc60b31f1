"""The REST API: django-ninja under /api/v1, OpenAPI at /api/docs.

Every error is JSON ``{"detail": ..., "code": ...}`` with a meaningful status: 401 without
credentials, 404 for what does not exist or is outside the user's scope, 409 for a
conflict, 422 for invalid input. Domain routers are added in :func:`build_api`.
"""

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DataError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from loudou.core.exceptions import ServiceError

from .auth import AUTH


def build_api() -> NinjaAPI:
    api = NinjaAPI(
        title="Loudou API",
        version="1",
        description=(
            "Loudou sales-funnel CRM. Authenticate with `Authorization: Bearer <token>` "
            "(`loudou token create USERNAME`) or a browser session."
        ),
        auth=AUTH,
        docs_url="/docs",
        openapi_url="/openapi.json",
        urls_namespace="api",
    )

    def error(request, status, detail, code, **extra):
        return api.create_response(
            request, {"detail": detail, "code": code, **extra}, status=status
        )

    @api.exception_handler(ServiceError)
    def service_error(request, exc):
        extra = {"field": exc.field} if exc.field else {}
        return error(request, exc.status, exc.message, exc.code, **extra)

    @api.exception_handler(Http404)
    def not_found(request, exc):
        return error(request, 404, _("Not found."), "not_found")

    @api.exception_handler(ObjectDoesNotExist)
    def does_not_exist(request, exc):
        return error(request, 404, _("Not found."), "not_found")

    @api.exception_handler(PermissionDenied)
    def forbidden(request, exc):
        return error(request, 403, _("You are not allowed to do this."), "forbidden")

    @api.exception_handler(AuthenticationError)
    def unauthenticated(request, exc):
        return error(request, 401, _("Authentication required."), "unauthenticated")

    @api.exception_handler(DjangoValidationError)
    def django_invalid(request, exc):
        errors = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        return error(request, 422, _("The data is not valid."), "invalid", errors=errors)

    @api.exception_handler(NinjaValidationError)
    def invalid(request, exc):
        return error(request, 422, _("The data is not valid."), "invalid", errors=exc.errors)

    @api.exception_handler(DataError)
    def data_error(request, exc):
        # The database refused a value the schema let through (too long, out of range):
        # still the caller's input, and the transaction has rolled back.
        return error(request, 422, _("The data is not valid."), "invalid")

    @api.exception_handler(OverflowError)
    def overflow(request, exc):
        # A number beyond what the database stores (e.g. an id over 64 bits): bad input.
        return error(request, 422, _("A number is out of range."), "invalid")

    @api.exception_handler(HttpError)
    def http_error(request, exc):
        return error(request, exc.status_code, str(exc.message), "error")

    from loudou.activities.api import router as activities_router
    from loudou.analytics.api import router as analytics_router
    from loudou.customers.api import router as customers_router
    from loudou.imports.api import router as imports_router
    from loudou.leads.api import router as leads_router
    from loudou.notifications.api import router as notifications_router
    from loudou.onboarding.api import router as onboarding_router
    from loudou.org.api import router as org_router
    from loudou.pipeline.api import router as pipeline_router
    from loudou.rules.api import router as rules_router
    from loudou.sales.api import router as sales_router
    from loudou.targets.api import router as targets_router
    from loudou.tasks.api import router as tasks_router
    from loudou.worklist.api import router as worklist_router

    api.add_router("/v1/", org_router)
    api.add_router("/v1/", customers_router)
    api.add_router("/v1/", pipeline_router)
    api.add_router("/v1/", leads_router)
    api.add_router("/v1/", analytics_router)
    api.add_router("/v1/", activities_router)
    api.add_router("/v1/", sales_router)
    api.add_router("/v1/", targets_router)
    api.add_router("/v1/", onboarding_router)
    api.add_router("/v1/", notifications_router)
    api.add_router("/v1/", imports_router)
    api.add_router("/v1/", tasks_router)
    api.add_router("/v1/", rules_router)
    api.add_router("/v1/", worklist_router)
    return api


api = build_api()


def unknown_endpoint(request, path=""):
    """Anything under /api/ that no endpoint matches: a 404 in JSON like every API error."""
    return JsonResponse({"detail": _("Not found."), "code": "not_found"}, status=404)
