"""The kinds of notification a channel may be limited to.

A notification's ``kind`` is a free string chosen by the app that sends it; a channel
either takes every kind (an empty list) or only the kinds chosen from this registry.
An app that sends a new kind registers it (in its ``AppConfig.ready``) so that people
can choose it: ``register_kind("task_due", _("A task is due"))``.
"""

from django.utils.translation import gettext_lazy as _

_kinds: dict[str, object] = {}


def register_kind(name: str, label) -> None:
    """Offer ``name`` (with a translatable ``label``) in the channels' kind choices;
    registering again replaces the label."""
    if not name or len(name) > 40:
        raise ValueError("a notification kind is 1 to 40 characters")
    _kinds[name] = label


def choices() -> list[tuple[str, str]]:
    """(name, label) of every registered kind, sorted by name."""
    return sorted(((name, str(label)) for name, label in _kinds.items()), key=lambda c: c[0])


def label(name: str) -> str:
    return str(_kinds.get(name, name))


def is_known(name: str) -> bool:
    return name in _kinds


# The kinds Loudou sends today (docs/notifications.md); other apps add theirs.
register_kind("lead_assigned", _("A lead was given to me"))
register_kind("recycle_warning", _("My leads go back to the pool soon"))
register_kind("recycled", _("My leads went back to the pool"))
register_kind("handover", _("Records were handed over to me"))
register_kind("task_reminder", _("Reminders of my tasks"))
register_kind("rule_breach", _("Follow-up rule breaches"))
