"""The account and contact list filters, shared by the list pages and the API."""

from django.db.models import Q
from ninja import Schema


class AccountFilter(Schema):
    q: str | None = None
    owner: int | None = None
    region: int | None = None
    industry: str | None = None
    grade: str | None = None
    segment: str | None = None

    def apply(self, qs):
        if self.q:
            qs = qs.filter(Q(name__icontains=self.q) | Q(phone__icontains=self.q))
        if self.owner is not None:
            qs = qs.filter(owner_id=self.owner)
        if self.region is not None:
            qs = qs.filter(region_id=self.region)
        if self.industry:
            qs = qs.filter(industry=self.industry)
        if self.grade is not None and self.grade != "":
            qs = qs.filter(grade=self.grade)
        if self.segment:
            qs = qs.filter(segment=self.segment)
        return qs


class ContactFilter(Schema):
    q: str | None = None
    account: int | None = None

    def apply(self, qs):
        if self.q:
            qs = qs.filter(
                Q(name__icontains=self.q) | Q(mobile__icontains=self.q) | Q(email__icontains=self.q)
            )
        if self.account is not None:
            qs = qs.filter(account_id=self.account)
        return qs
