from django.db import models
from django.utils.translation import gettext_lazy as _


class Grade(models.TextChoices):
    """Account grade (DOMAIN §4), derived from the D/C/B/A pipeline, never typed in."""

    NONE = "", _("No grade")
    D = "D", _("D · identify")
    C = "C", _("C · target")
    B = "B", _("B · key follow-up")
    A = "A", _("A · order follow-up")
    WON = "won", _("Won customer")


class Size(models.TextChoices):
    MICRO = "micro", _("1–9 people")
    SMALL = "small", _("10–99 people")
    MEDIUM = "medium", _("100–499 people")
    LARGE = "large", _("500–1999 people")
    ENTERPRISE = "enterprise", _("2000+ people")


class Source(models.TextChoices):
    REFERRAL = "referral", _("Referral")
    WEBSITE = "website", _("Website")
    EXHIBITION = "exhibition", _("Trade show")
    COLD_CALL = "cold_call", _("Cold call")
    ADVERTISING = "advertising", _("Advertising")
    PARTNER = "partner", _("Partner")
    INBOUND = "inbound", _("Inbound inquiry")
    OTHER = "other", _("Other")


class RevisitClass(models.TextChoices):
    """Revisit interval by expected time to close and importance (DOMAIN §4, seed 001)."""

    DAYS_20 = "20", _("Every 20 days")
    DAYS_40 = "40", _("Every 40 days")
    DAYS_60 = "60", _("Every 60 days")
    DAYS_80 = "80", _("Every 80 days")


class RevisitStatus(models.TextChoices):
    KEEP = "keep", _("Keep visiting")
    PAUSE = "pause", _("Pause")
    NEVER_ABANDON = "never_abandon", _("Never abandon")


class Segment(models.TextChoices):
    """Acquire / retain / abandon by purchase potential vs our share (seed 003)."""

    NONE = "", _("Not segmented")
    ACQUIRE = "acquire", _("Acquire")
    RETAIN = "retain", _("Retain")
    ABANDON = "abandon", _("Abandon")


class BuyingRole(models.TextChoices):
    NONE = "", _("Unknown")
    PURCHASER = "purchaser", _("Purchaser")
    USER = "user", _("User")
    TECHNICAL = "technical", _("Technical gatekeeper")
    FINANCIAL = "financial", _("Financial gatekeeper")
    DECISION_MAKER = "decision_maker", _("Decision maker")


class ContactStyle(models.TextChoices):
    """Social style (seed 000), each with short approach advice for the rep."""

    NONE = "", _("Unknown")
    TIGER = "tiger", _("Tiger · commander")
    PEACOCK = "peacock", _("Peacock · socialiser")
    KOALA = "koala", _("Koala · coordinator")
    OWL = "owl", _("Owl · thinker")


STYLE_ADVICE = {
    ContactStyle.TIGER: _(
        "Be brief and direct; lead with results and options; let them decide; never waste "
        "their time."
    ),
    ContactStyle.PEACOCK: _(
        "Be warm and lively; share stories and recognition; give them the stage; put "
        "the details in writing afterwards."
    ),
    ContactStyle.KOALA: _(
        "Be patient and sincere; build trust step by step; show safety and support; do "
        "not push for a fast decision."
    ),
    ContactStyle.OWL: _(
        "Be prepared and precise; bring data, cases and documents; answer questions "
        "fully; give them time to analyse."
    ),
}
