"""The full export (admin): every account, contact, lead, opportunity and stage change in
Loudou's native import layout, as CSV files that ``loudou import`` reads back.

Records are written in a stable order and linked by ordinal keys (``A1``, ``O1``), not by
database ids, so that exporting, importing into an empty instance and exporting again
gives identical files. What the native layout does not carry yet (contact roles, lead
status and conversion links, pipeline English names and stage guidance) is listed in
docs/import.md.
"""

from __future__ import annotations

import csv
from pathlib import Path

from loudou.core.exceptions import NotPermitted
from loudou.customers.models import Account, Contact
from loudou.leads.models import Lead
from loudou.pipeline.models import Opportunity, StageChange

ACCOUNT_COLUMNS = ["account_id", "name", "industry", "phone", "website", "address", "source",
                   "owner", "notes"]  # fmt: skip
CONTACT_COLUMNS = ["account", "name", "title", "mobile", "phone", "email", "wechat", "notes"]
LEAD_COLUMNS = ["name", "company", "title", "mobile", "phone", "email", "wechat", "source",
                "industry", "owner", "pool", "notes"]  # fmt: skip
OPPORTUNITY_COLUMNS = ["id", "name", "account", "amount", "currency", "pipeline", "stage",
                       "status", "probability", "expected_close_date", "owner", "created_at",
                       "closed_at", "source", "next_step", "description",
                       "lost_reason"]  # fmt: skip
HISTORY_COLUMNS = ["opportunity_id", "stage", "changed_at", "amount", "probability"]


def _iso(value) -> str:
    return value.isoformat() if value else ""


def _user(user) -> str:
    return user.username if user else ""


def export_all(folder, *, actor) -> dict[str, Path]:
    """Write accounts.csv, contacts.csv, leads.csv, opportunities.csv and history.csv
    (UTF-8 with BOM, so that Excel opens them) into ``folder``."""
    if not actor.sees_everything:
        raise NotPermitted()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}

    def sheet(name, columns, rows):
        path = folder / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8-sig") as handle:
            out = csv.writer(handle)
            out.writerow(columns)
            for row in rows:
                out.writerow(["" if v is None else v for v in row])
        paths[name] = path

    accounts = Account.objects.select_related("owner").order_by("name", "created_at", "pk")
    sheet("accounts", ACCOUNT_COLUMNS, (
        [f"A{i}", a.name, a.industry, a.phone, a.website, a.address, a.source,
         _user(a.owner), a.notes] for i, a in enumerate(accounts.iterator(), start=1)
    ))  # fmt: skip
    contacts = Contact.objects.select_related("account").order_by("account__name", "name", "pk")
    sheet("contacts", CONTACT_COLUMNS, (
        [c.account.name, c.name, c.title, c.mobile, c.phone, c.email, c.wechat, c.notes]
        for c in contacts.iterator()
    ))  # fmt: skip
    leads = Lead.objects.select_related("owner", "pool").order_by("name", "mobile", "pk")
    sheet("leads", LEAD_COLUMNS, (
        [x.name, x.company, x.title, x.mobile, x.phone, x.email, x.wechat, x.source,
         x.industry, _user(x.owner), x.pool.name if x.pool else "", x.notes]
        for x in leads.iterator()
    ))  # fmt: skip
    opps = Opportunity.objects.select_related(
        "account", "pipeline", "stage", "owner", "lost_reason"
    ).order_by("created_at", "name", "pk")
    keys: dict[int, str] = {}

    def opp_rows():
        for i, o in enumerate(opps.iterator(), start=1):
            keys[o.pk] = f"O{i}"
            yield [keys[o.pk], o.name, o.account.name, o.amount, o.currency, o.pipeline.name,
                   o.stage.name, o.status, o.probability, _iso(o.expected_close_date),
                   _user(o.owner), _iso(o.created_at), _iso(o.closed_at), o.source,
                   o.next_step, o.description,
                   o.lost_reason.name if o.lost_reason else ""]  # fmt: skip

    sheet("opportunities", OPPORTUNITY_COLUMNS, opp_rows())
    changes = StageChange.objects.select_related("to_stage").order_by(
        "opportunity__created_at", "opportunity__name", "opportunity_id", "changed_at", "pk"
    )
    sheet("history", HISTORY_COLUMNS, (
        [keys[c.opportunity_id], c.to_stage.name, _iso(c.changed_at), c.amount,
         c.to_stage.default_probability]
        for c in changes.iterator()
    ))  # fmt: skip
    return paths
