"""Small helpers every app's views share: list filters from the query string, and
running a service for a valid form so that a refusal lands on the form."""

from django.core.exceptions import ValidationError
from pydantic import ValidationError as PydanticValidationError

from loudou.core.exceptions import ServiceError


def read_filters(request, schema):
    """The list filters of ``schema`` (the same Schema the API uses) from the query
    string; values that do not parse are ignored rather than failing the page."""
    data = {k: v for k, v in request.GET.items() if k in schema.model_fields and v != ""}
    try:
        return schema(**data)
    except PydanticValidationError:
        return schema()


def save_with_service(form, call):
    """Run a service for a valid form; put a refusal on the form instead of failing.
    Returns what the service returned, or None when it refused."""
    try:
        return call()
    except ServiceError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            form.add_error(None, exc.messages)
    return None
