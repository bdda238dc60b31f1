"""Choices of an activity (DOMAIN §6, §10)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Kind(models.TextChoices):
    """How the rep worked with the customer. ``research`` is desk work on an account
    (profile building); the onboarding roadmap counts it."""

    CALL = "call", _("Call")
    VISIT = "visit", _("Visit")
    EMAIL = "email", _("E-mail")
    WECHAT = "wechat", _("WeChat")
    MEETING = "meeting", _("Meeting")
    RESEARCH = "research", _("Research")
    OTHER = "other", _("Other")


class Purpose(models.TextChoices):
    """Why: finding new business, moving an open deal, or looking after a customer."""

    PROSPECTING = "prospecting", _("Prospecting")
    FOLLOW_UP = "follow_up", _("Follow-up")
    SERVICE = "service", _("Service")
    OTHER = "other", _("Other")


class Outcome(models.TextChoices):
    REACHED = "reached", _("Reached")
    NOT_REACHED = "not_reached", _("Not reached")
    LEFT_MESSAGE = "left_message", _("Left a message")
    MEETING_HELD = "meeting_held", _("Meeting held")
    VISITED = "visited", _("Visited")
    CANCELLED = "cancelled", _("Cancelled")
    OTHER = "other", _("Other")


# Kinds that need no outcome (desk work has nobody to reach).
OUTCOME_OPTIONAL = {Kind.RESEARCH}


class VisitStatus(models.TextChoices):
    """A visit is planned, then done (recorded, with an activity) or cancelled."""

    PLANNED = "planned", _("Planned")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


# The outcomes a visit can be recorded with (a cancelled visit is cancelled, not recorded).
VISIT_OUTCOMES = (Outcome.VISITED, Outcome.MEETING_HELD, Outcome.NOT_REACHED, Outcome.OTHER)
