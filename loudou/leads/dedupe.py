"""Possible duplicates of a lead among leads, accounts and contacts (DOMAIN §5).

A record is a possible duplicate when its normalised mobile, e-mail or company name
(normalize.py) equals the lead's. Every key is an indexed column, so a check is a few
indexed lookups whatever the table sizes.
"""

from dataclasses import dataclass, field

from django.db.models import Q

from loudou.customers.models import Account, Contact

from .models import Lead
from .normalize import normalize_company, normalize_email, normalize_phone


@dataclass
class Keys:
    mobile: str = ""
    email: str = ""
    company: str = ""

    def __bool__(self):
        return bool(self.mobile or self.email or self.company)


@dataclass
class Duplicates:
    """Possible duplicates the user may see, and how many more exist out of their sight
    (so a rep learns that a colleague already works the company, without seeing it)."""

    leads: list = field(default_factory=list)
    accounts: list = field(default_factory=list)
    contacts: list = field(default_factory=list)
    hidden: int = 0

    def __bool__(self):
        return bool(self.leads or self.accounts or self.contacts or self.hidden)

    def messages(self) -> list[str]:
        from django.utils.translation import gettext as _

        out = [_("Possible duplicate lead: %s") % lead for lead in self.leads]
        out += [_("Possible duplicate account: %s") % account for account in self.accounts]
        out += [
            _("Possible duplicate contact: %(contact)s at %(account)s")
            % {"contact": c, "account": c.account}
            for c in self.contacts
        ]
        if self.hidden:
            out.append(_("%d possible duplicates belong to colleagues.") % self.hidden)
        return out


def keys_of(obj) -> Keys:
    """Normalised keys of a lead or of a dict of lead fields."""
    get = obj.get if isinstance(obj, dict) else (lambda name: getattr(obj, name, ""))
    return Keys(
        mobile=normalize_phone(get("mobile")) or normalize_phone(get("phone")),
        email=normalize_email(get("email")),
        company=normalize_company(get("company")),
    )


def find_duplicates(lead_or_fields, *, user=None, limit: int = 20) -> Duplicates:
    """Leads, accounts and contacts sharing a normalised key with ``lead_or_fields``.
    With ``user``, only what the user may see is listed and the rest is counted."""
    keys = keys_of(lead_or_fields)
    if not keys:
        return Duplicates()
    lead_q = Q(pk__in=[])
    contact_q = Q(pk__in=[])
    if keys.mobile:
        lead_q |= Q(mobile_key=keys.mobile)
        contact_q |= Q(mobile_key=keys.mobile)
    if keys.email:
        lead_q |= Q(email_key=keys.email)
        contact_q |= Q(email_key=keys.email)
    if keys.company:
        lead_q |= Q(company_key=keys.company)
    leads = Lead.objects.filter(lead_q)
    own_pk = getattr(lead_or_fields, "pk", None)
    if own_pk:
        leads = leads.exclude(pk=own_pk)
    contacts = Contact.objects.filter(contact_q)
    account_q = Q(pk__in=contacts.values("account_id"))
    if keys.company:
        account_q |= Q(name_key=keys.company)
    accounts = Account.objects.filter(account_q)
    hidden = 0
    if user is not None:
        total = leads.count() + accounts.count()
        leads = Lead.objects.visible_to(user).filter(pk__in=leads.values("pk"))
        accounts = Account.objects.visible_to(user).filter(pk__in=accounts.values("pk"))
        contacts = Contact.objects.visible_to(user).filter(pk__in=contacts.values("pk"))
        hidden = total - leads.count() - accounts.count()
    return Duplicates(
        leads=list(leads.order_by("pk")[:limit]),
        accounts=list(accounts.order_by("pk")[:limit]),
        contacts=list(contacts.select_related("account").order_by("pk")[:limit]),
        hidden=max(hidden, 0),
    )
