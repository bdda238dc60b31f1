"""Exceptions that services raise and that the web and API layers turn into answers."""

from django.utils.translation import gettext_lazy as _


class ServiceError(Exception):
    """A refused action: nothing was changed. ``status`` is the HTTP status to answer."""

    status = 400
    default_message = _("The action was refused.")
    # The API's ``code`` unless the raiser names a more precise one; the same words the
    # router uses for the same statuses (invalid, forbidden...), so clients need one list.
    default_code = "refused"

    def __init__(self, message=None, *, field=None, code=None):
        self.message = str(message or self.default_message)
        self.field = field
        self.code = code or self.default_code
        super().__init__(self.message)


class ValidationFailed(ServiceError):
    """Input that breaks a rule (422)."""

    status = 422
    default_message = _("The data is not valid.")
    default_code = "invalid"


class Conflict(ServiceError):
    """Someone else changed the record first, or the state no longer allows it (409)."""

    status = 409
    default_message = _("Someone else changed this record; reload it and try again.")
    default_code = "conflict"


class NotPermitted(ServiceError):
    """The user may see the record but not do this to it (403)."""

    status = 403
    default_message = _("You are not allowed to do this.")
    default_code = "forbidden"
