"""Request hygiene shared by the pages and the API."""

from django.http import HttpResponseBadRequest, JsonResponse
from django.utils.translation import gettext as _


class RejectNulMiddleware:
    """Refuse a query string or form field containing a NUL character with a 400.

    PostgreSQL cannot store or compare text with NUL bytes and raises an error deep in a
    query (a 500); no legitimate input contains one.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if "\x00" in request.META.get("QUERY_STRING", "") or "%00" in request.META.get(
            "QUERY_STRING", ""
        ):
            return self._refuse(request)
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            if any("\x00" in value for values in request.POST.lists() for value in values[1]):
                return self._refuse(request)
        return self.get_response(request)

    @staticmethod
    def _refuse(request):
        message = _("The request contains a NUL character.")
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message, "code": "invalid"}, status=400)
        return HttpResponseBadRequest(message)
