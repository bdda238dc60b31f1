"""Request hygiene shared by the pages and the API."""

from django.http import HttpResponseBadRequest, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class RejectNulMiddleware:
    """Refuse a request whose query string, form fields or JSON body contain a NUL
    character, with a 400.

    PostgreSQL cannot store or compare text with NUL bytes and raises an error deep in a
    query (a 500); no legitimate input contains one. A body that cannot be parsed at all
    is a 400 too.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in query or "%00" in query:
            return self._refuse(request)
        if request.method in ("POST", "PUT", "PATCH"):
            if request.content_type in FORM_TYPES:
                try:
                    fields = request.POST.lists()
                except MultiPartParserError:
                    return self._refuse(request, _("The request body cannot be read."))
                if any("\x00" in value for _name, values in fields for value in values):
                    return self._refuse(request)
            elif request.content_type == "application/json":
                body = request.body
                if b"\x00" in body or b"\\u0000" in body.lower():
                    return self._refuse(request)
        return self.get_response(request)

    @staticmethod
    def _refuse(request, message=None):
        message = message or _("The request contains a NUL character.")
        if request.path.startswith("/api/"):
            return JsonResponse({"detail": message, "code": "invalid"}, status=400)
        return HttpResponseBadRequest(message)
