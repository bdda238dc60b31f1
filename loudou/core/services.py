"""Helpers shared by the services of every domain app."""

from django.utils.translation import gettext as _

from .exceptions import Conflict


def check_version(obj, version):
    """Refuse a write made from a stale copy of ``obj``.

    ``version`` is the version the client last saw; ``None`` means the caller holds the
    row lock and read it itself. Call it after ``select_for_update()``.
    """
    if version is not None and int(version) != obj.version:
        raise Conflict(
            _(
                "This record was changed by someone else (version %(current)s, yours "
                "%(yours)s). Reload it and try again."
            )
            % {"current": obj.version, "yours": version},
            code="version_conflict",
        )
