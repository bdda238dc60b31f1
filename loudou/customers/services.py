"""Writes to accounts and contacts. Views, API, importers and the CLI all call these."""

from django.core.exceptions import ValidationError
from django.db import transaction

from loudou.core.services import check_version
from loudou.leads.normalize import normalize_company, normalize_email, normalize_phone

from .models import Account, Contact

ACCOUNT_FIELDS = [
    "name", "industry", "region", "size", "source", "address", "latitude", "longitude",
    "phone", "phone_alt", "website", "founded_on", "revisit_class", "revisit_status",
    "segment", "notes", "owner",
]  # fmt: skip
CONTACT_FIELDS = [
    "name", "title", "mobile", "phone", "email", "wechat", "buying_role", "style",
    "birthday", "notes",
]  # fmt: skip


def _assign(obj, data, allowed):
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationError({field: "Unknown field." for field in sorted(unknown)})
    for field, value in data.items():
        setattr(obj, field, value)
    _set_keys(obj)


def _set_keys(obj):
    """Keep the normalised duplicate-detection keys in step with the fields."""
    if isinstance(obj, Account):
        obj.name_key = normalize_company(obj.name)
    else:
        obj.mobile_key = normalize_phone(obj.mobile) or normalize_phone(obj.phone)
        obj.email_key = normalize_email(obj.email)


@transaction.atomic
def create_account(*, actor, shared_with=(), **data) -> Account:
    """Create an account; the actor owns it unless another owner is given."""
    account = Account(created_by=actor)
    data.setdefault("owner", actor)
    _assign(account, data, ACCOUNT_FIELDS)
    account.full_clean()
    account.save()
    if shared_with:
        account.shared_with.set(shared_with)
    return account


@transaction.atomic
def update_account(account: Account, *, actor, version=None, shared_with=None, **data) -> Account:
    """Change an account. ``version`` is what the editor saw; an older one is refused
    with a conflict so that nobody silently overwrites a colleague's change."""
    locked = Account.objects.select_for_update().get(pk=account.pk)
    check_version(locked, version)
    grouped = (locked.region_id, locked.industry)  # its won deals' breakdown keys
    _assign(locked, data, ACCOUNT_FIELDS)
    locked.version += 1
    locked.full_clean()
    locked.save()
    if (locked.region_id, locked.industry) != grouped:
        from loudou.pipeline import summaries

        summaries.account_changed(locked.pk, grouped, (locked.region_id, locked.industry))
    if shared_with is not None:
        locked.shared_with.set(shared_with)
    return locked


@transaction.atomic
def create_contact(account: Account, *, actor, **data) -> Contact:
    """Add a person to an account."""
    contact = Contact(account=account)
    _assign(contact, data, CONTACT_FIELDS)
    contact.full_clean()
    contact.save()
    return contact


@transaction.atomic
def update_contact(contact: Contact, *, actor, version=None, **data) -> Contact:
    """Change a contact, refusing a stale version."""
    locked = Contact.objects.select_for_update().get(pk=contact.pk)
    check_version(locked, version)
    _assign(locked, data, CONTACT_FIELDS)
    locked.version += 1
    locked.full_clean()
    locked.save()
    return locked
