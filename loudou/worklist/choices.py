"""Choices of the PDCA daily plan (DOMAIN §7, seed 000)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    """Plan: the seven things of the day are key items, routine items or ad hoc work."""

    KEY = "key", _("Key")
    ROUTINE = "routine", _("Routine")
    AD_HOC = "ad_hoc", _("Ad hoc")


class ItemStatus(models.TextChoices):
    """Do: how far the item got."""

    PLANNED = "planned", _("Planned")
    DONE = "done", _("Done")
    PARTLY = "partly", _("Partly done")
    NOT_DONE = "not_done", _("Not done")


# Items that a carry-over takes to the next day.
UNFINISHED = (ItemStatus.PLANNED, ItemStatus.PARTLY, ItemStatus.NOT_DONE)
