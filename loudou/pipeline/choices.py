from django.db import models
from django.utils.translation import gettext_lazy as _


class StageKind(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Status(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class ChecklistMode(models.TextChoices):
    STRICT = "strict", _("Strict: tick every item before advancing")
    ADVISORY = "advisory", _("Advisory: remind, but allow advancing")


class ChangeKind(models.TextChoices):
    CREATED = "created", _("Created")
    MOVED = "moved", _("Moved")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")
    REOPENED = "reopened", _("Reopened")
