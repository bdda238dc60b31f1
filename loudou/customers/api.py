"""Accounts and contacts API. Every lookup goes through ``visible_to``: a record outside
the caller's scope answers 404, exactly like one that does not exist."""

from datetime import date, datetime
from decimal import Decimal

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema

from loudou.api.pagination import LimitOffsetPagination, paginate
from loudou.core.exceptions import ValidationFailed
from loudou.org.models import Region, User, assignable_owners

from . import services
from .filters import AccountFilter, ContactFilter
from .models import Account, Contact

router = Router(tags=["customers"])


class AccountIn(Schema):
    name: str = Field(..., min_length=1, max_length=200)
    industry: str = Field("", max_length=100)
    region_id: int | None = None
    size: str = ""
    source: str = ""
    address: str = Field("", max_length=300)
    latitude: Decimal | None = Field(None, ge=-90, le=90, max_digits=9, decimal_places=6)
    longitude: Decimal | None = Field(None, ge=-180, le=180, max_digits=9, decimal_places=6)
    phone: str = Field("", max_length=60)
    phone_alt: str = Field("", max_length=60)
    website: str = Field("", max_length=200)
    founded_on: date | None = None
    revisit_class: str = ""
    revisit_status: str = "keep"
    segment: str = ""
    notes: str = ""
    owner_id: int | None = None


class AccountPatch(Schema):
    version: int = Field(..., ge=1, description="The version you last read (optimistic lock).")
    name: str | None = Field(None, min_length=1, max_length=200)
    industry: str | None = Field(None, max_length=100)
    region_id: int | None = None
    size: str | None = None
    source: str | None = None
    address: str | None = Field(None, max_length=300)
    phone: str | None = Field(None, max_length=60)
    phone_alt: str | None = Field(None, max_length=60)
    website: str | None = Field(None, max_length=200)
    founded_on: date | None = None
    revisit_class: str | None = None
    revisit_status: str | None = None
    segment: str | None = None
    notes: str | None = None
    owner_id: int | None = None


class AccountOut(Schema):
    id: int
    name: str
    industry: str
    region_id: int | None
    size: str
    source: str
    address: str
    latitude: Decimal | None
    longitude: Decimal | None
    phone: str
    phone_alt: str
    website: str
    founded_on: date | None
    grade: str
    revisit_class: str
    revisit_status: str
    segment: str
    notes: str
    owner_id: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class ContactIn(Schema):
    account_id: int
    name: str = Field(..., min_length=1, max_length=100)
    title: str = Field("", max_length=100)
    mobile: str = Field("", max_length=30)
    phone: str = Field("", max_length=60)
    email: str = Field("", max_length=254)
    wechat: str = Field("", max_length=60)
    buying_role: str = ""
    style: str = ""
    birthday: date | None = None
    notes: str = ""


class ContactPatch(Schema):
    version: int = Field(..., ge=1)
    name: str | None = Field(None, min_length=1, max_length=100)
    title: str | None = Field(None, max_length=100)
    mobile: str | None = Field(None, max_length=30)
    phone: str | None = Field(None, max_length=60)
    email: str | None = Field(None, max_length=254)
    wechat: str | None = Field(None, max_length=60)
    buying_role: str | None = None
    style: str | None = None
    birthday: date | None = None
    notes: str | None = None


class ContactOut(Schema):
    id: int
    account_id: int
    name: str
    title: str
    mobile: str
    phone: str
    email: str
    wechat: str
    buying_role: str
    style: str
    style_advice: str
    birthday: date | None
    notes: str
    version: int

    @staticmethod
    def resolve_style_advice(obj) -> str:
        # A lazy translation is not a str to pydantic: render it in the request's language.
        return str(obj.style_advice)


def _account_data(request, payload: dict, *, current_owner_id=None) -> dict:
    """Resolve ids in an account payload to objects the caller may use. Echoing the
    current owner back is not an assignment, so it is always accepted."""
    data = dict(payload)
    if "region_id" in data:
        region_id = data.pop("region_id")
        data["region"] = None
        if region_id is not None:
            data["region"] = Region.objects.filter(pk=region_id).first()
            if data["region"] is None:
                raise ValidationFailed(_("Unknown region."), field="region_id")
    if "owner_id" in data:
        owner_id = data.pop("owner_id")
        if owner_id is None:
            data["owner"] = request.auth
        else:
            owners = assignable_owners(request.auth)
            if owner_id == current_owner_id:
                owners = User.objects.all()
            owner = owners.filter(pk=owner_id).first()
            if owner is None:
                raise ValidationFailed(
                    _("You cannot give this record to that user."), field="owner_id"
                )
            data["owner"] = owner
    return data


@router.get("/accounts", response=list[AccountOut])
@paginate(LimitOffsetPagination)
def list_accounts(request, filters: Query[AccountFilter]):
    return filters.apply(Account.objects.visible_to(request.auth)).order_by("name", "pk")


@router.post("/accounts", response={201: AccountOut})
def create_account(request, payload: AccountIn):
    data = _account_data(request, payload.dict())
    return 201, services.create_account(actor=request.auth, **data)


@router.get("/accounts/{account_id}", response=AccountOut)
def get_account(request, account_id: int):
    return get_object_or_404(Account.objects.visible_to(request.auth), pk=account_id)


@router.patch("/accounts/{account_id}", response=AccountOut)
def update_account(request, account_id: int, payload: AccountPatch):
    account = get_object_or_404(Account.objects.visible_to(request.auth), pk=account_id)
    data = payload.dict(exclude_unset=True)
    version = data.pop("version")
    data = _account_data(request, data, current_owner_id=account.owner_id)
    return services.update_account(account, actor=request.auth, version=version, **data)


@router.get("/contacts", response=list[ContactOut])
@paginate(LimitOffsetPagination)
def list_contacts(request, filters: Query[ContactFilter]):
    return filters.apply(Contact.objects.visible_to(request.auth)).order_by("name", "pk")


@router.post("/contacts", response={201: ContactOut})
def create_contact(request, payload: ContactIn):
    data = payload.dict()
    account = Account.objects.visible_to(request.auth).filter(pk=data.pop("account_id")).first()
    if account is None:
        raise ValidationFailed(_("Unknown account."), field="account_id")
    return 201, services.create_contact(account, actor=request.auth, **data)


@router.get("/contacts/{contact_id}", response=ContactOut)
def get_contact(request, contact_id: int):
    return get_object_or_404(Contact.objects.visible_to(request.auth), pk=contact_id)


@router.patch("/contacts/{contact_id}", response=ContactOut)
def update_contact(request, contact_id: int, payload: ContactPatch):
    contact = get_object_or_404(Contact.objects.visible_to(request.auth), pk=contact_id)
    data = payload.dict(exclude_unset=True)
    version = data.pop("version")
    return services.update_contact(contact, actor=request.auth, version=version, **data)
