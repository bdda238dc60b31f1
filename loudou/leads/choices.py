from django.db import models
from django.utils.translation import gettext_lazy as _


class LeadStatus(models.TextChoices):
    """Where a lead stands (DOMAIN §5). Converted and disqualified are final."""

    NEW = "new", _("New")
    CONTACTED = "contacted", _("Contacted")
    QUALIFIED = "qualified", _("Qualified")
    CONVERTED = "converted", _("Converted")
    DISQUALIFIED = "disqualified", _("Disqualified")


OPEN_STATUSES = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.QUALIFIED)


class PoolEventKind(models.TextChoices):
    CREATE = "create", _("Created")
    CLAIM = "claim", _("Claimed")
    RELEASE = "release", _("Released")
    ASSIGN = "assign", _("Assigned")
    RECYCLE = "recycle", _("Recycled")
    CONVERT = "convert", _("Converted")
    DISQUALIFY = "disqualify", _("Disqualified")
    HANDOVER = "handover", _("Handed over")
    MERGE = "merge", _("Merged")
    WARN = "warn", _("Warned before recycling")


class AssignmentMethod(models.TextChoices):
    ROUND_ROBIN = "round_robin", _("Round robin among named reps")
    LEAST_LOAD = "least_open_load", _("Least open load")
    FIXED_REP = "fixed_rep", _("Fixed rep")
    POOL = "pool", _("Into a public pool")


class ClaimRefusal(models.TextChoices):
    """Why a claim was refused: the API's ``code`` of the 409."""

    TAKEN = "taken", _("Already taken")
    LIMIT = "limit", _("Limit reached")
    BLOCKED = "blocked", _("Blocked after release")
    REGION = "region", _("Not your region or team")


class RecycleKind(models.TextChoices):
    """What an auto-recycle rule waits for (DOMAIN §5)."""

    NO_FOLLOW_UP = "no_follow_up", _("No follow-up for N days")
    NOT_CONVERTED = "not_converted", _("Not converted within N days")
    NO_WON_DEAL = "no_won_deal", _("No won deal within N days")


class RecycleTarget(models.TextChoices):
    """Which records a recycle rule returns to its pool."""

    LEADS = "leads", _("Leads")
    ACCOUNTS = "accounts", _("Accounts")
