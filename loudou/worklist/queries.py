"""The rep's worklist for today (DOMAIN §7, seeds 004 and 000): what to do, in order,
closest to money first.

The list is computed on each request, in a fixed number of queries whatever the data
size (tasks, breaches, and one query per kind of record in each band, each fetching at
most one screenful with its total counted by a window function). See docs/worklist.md
for the reasons behind every rule; the numbers below are the ones it names.

Bands, top to bottom:

1. ``orders`` — orders in hand and old customers' care: active contracts and orders with
   nothing left to collect (to be delivered and completed), then customers (grade 成交,
   or no grade but a signed contract or order) whose care is due: a birthday or company
   anniversary in the next ``GREETING_DAYS`` days, or no contact for ``CARE_DAYS`` days
   (at least one call a month, DOMAIN §4).
2. ``unpaid`` — signed but unpaid: signed contracts with money outstanding; overdue
   first (most days overdue, then the larger overdue amount), then by next due date.
3. ``closing`` — about to order: open opportunities at ``CLOSING_PROBABILITY`` % or more,
   or expected to close within ``CLOSING_DAYS`` days (or already past that date) at
   ``CLOSING_SOON_PROBABILITY`` % or more; largest weighted amount first.
4. ``inquiries`` — recent inquiries: the other open opportunities, and leads that came
   in within ``RECENT_DAYS`` days; never contacted first (longest waiting first), then
   longest since the last contact.
5. ``development`` — new development: older open leads and accounts without any open
   or won deal or signed contract; never contacted first, then longest since the last
   contact; and the public pool to claim from.

Within each band, records with an open rule breach or a task due today or earlier come
first (earliest due first), and they are always shown even beyond the band's limit.
Breaches and due tasks about anything else (another rep's record, an account whose
deals are open, nothing at all) form the ``due`` section above the bands.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db.models import (
    BooleanField,
    Case,
    Count,
    DecimalField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
    Window,
)
from django.db.models.functions import Coalesce
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _

from loudou.activities.models import Activity
from loudou.customers.choices import Grade, RevisitStatus
from loudou.customers.models import Account, Contact
from loudou.leads.choices import OPEN_STATUSES
from loudou.leads.models import Lead
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity
from loudou.rules.models import Breach
from loudou.sales.choices import SIGNED_STATUSES, ContractStatus, ShipmentStatus
from loudou.sales.models import Contract
from loudou.sales.queries import receivables, with_overdue
from loudou.tasks.models import Task
from loudou.web.templatetags.loudou import money

BAND_LIMIT = 10
DUE_LIMIT = 50
CARE_DAYS = 30
GREETING_DAYS = 7
CLOSING_PROBABILITY = Decimal(60)
CLOSING_DAYS = 30
CLOSING_SOON_PROBABILITY = Decimal(30)
RECENT_DAYS = 14

# Days a plan may be for: beyond them date arithmetic overflows and databases disagree.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2100, 12, 31)

BAND_KEYS = ("orders", "unpaid", "closing", "inquiries", "development")


def band_labels() -> dict[str, tuple[str, str]]:
    """Each band's title and the one-line reason for its place (translated now)."""
    return {
        "due": (_("Overdue and due today"), _("Rule breaches and tasks not about a record below.")),
        "orders": (
            _("Orders in hand and customer care"),
            _("Deliver what was bought; keep won customers close (a call a month, greetings)."),
        ),
        "unpaid": (
            _("Signed but unpaid"),
            _("Collect what is owed: overdue instalments first."),
        ),
        "closing": (
            _("About to order"),
            _("Deals near the finish: the largest weighted amount first."),
        ),
        "inquiries": (
            _("Recent inquiries"),
            _("Open deals and new leads: whoever has waited longest for you first."),
        ),
        "development": (
            _("New development"),
            _("Older leads and accounts without a deal; then the public pool."),
        ),
    }


@dataclass
class Item:
    """One line of the worklist: a record (or a lone task or breach), why it is here and
    what can be done about it."""

    kind: str  # contract, account, opportunity, lead, task, breach
    obj: object
    title: str
    reason: str
    url: str
    phone: str = ""
    subject_type: str = ""  # what an activity logged from here is about
    subject_id: int | None = None
    amount: Decimal | None = None
    sort_key: tuple = ()
    tasks: list = field(default_factory=list)
    breaches: list = field(default_factory=list)

    @property
    def urgent(self) -> bool:
        return bool(self.tasks or self.breaches)

    @property
    def first_due(self) -> datetime | None:
        dues = [t.due_at for t in self.tasks] + [b.due_at for b in self.breaches]
        return min(dues) if dues else None

    lone: bool = False

    @property
    def dom_id(self) -> str:
        return f"wl-{self.kind}-{self.obj.pk}"

    @property
    def plan_key(self) -> str:
        """What a plan item made from this line links to (see views._planned_keys)."""
        if self.subject_type:
            return f"{self.subject_type}-{self.subject_id}"
        return f"task-{self.obj.pk}" if self.kind == "task" else ""


@dataclass
class Band:
    key: str
    label: str
    hint: str
    items: list
    count: int
    more_url: str = ""

    @property
    def urgent_count(self) -> int:
        return sum(1 for item in self.items if item.urgent)

    @property
    def hidden(self) -> int:
        return max(self.count - len(self.items), 0)


@dataclass
class Worklist:
    user: object
    now: datetime
    today: date
    due: Band
    bands: list
    pool_count: int

    @property
    def sections(self) -> list:
        return [self.due, *self.bands]

    @property
    def total(self) -> int:
        return sum(band.count for band in self.sections)


# --- small helpers ----------------------------------------------------------------------


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _short(day) -> str:
    if isinstance(day, datetime):
        day = timezone.localdate(day)
    return formats.date_format(day, "MONTH_DAY_FORMAT")


def _days_since(when: datetime | None, today: date) -> int | None:
    return None if when is None else (today - timezone.localdate(when)).days


def _last_contact(field_name: str):
    """The newest activity's time on the row (a correlated subquery using the
    activity's (subject, occurred_at) index)."""
    return Subquery(
        Activity.objects.filter(**{field_name: OuterRef("pk")})
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )


def _urgent(ids) -> Case:
    """0 for the rows a due task or open breach is about, else 1 (sorts them first)."""
    return Case(
        When(pk__in=list(ids), then=Value(0)), default=Value(1), output_field=IntegerField()
    )


def _fetch(qs, limit: int) -> tuple[list, int]:
    """Up to ``limit`` rows of ``qs`` and the total number of rows, in one query."""
    rows = list(qs.annotate(wl_total=Window(Count("pk")))[:limit])
    return rows, (rows[0].wl_total if rows else 0)


def _contact_reason(last: datetime | None, since: datetime, today: date) -> str:
    days = _days_since(last, today)
    if days is None:
        waited = _days_since(since, today)
        if waited == 0:
            return _("Not contacted yet: came in today")
        return ngettext(
            "Not contacted yet: waiting %(days)s day",
            "Not contacted yet: waiting %(days)s days",
            waited,
        ) % {"days": waited}
    if days == 0:
        return _("Contacted today")
    return ngettext("No contact for %(days)s day", "No contact for %(days)s days", days) % {
        "days": days
    }


def _contact_key(urgent: int, last: datetime | None, since: datetime) -> tuple:
    """Never contacted first (the longest waiting first), then the longest since the
    last contact; the same order as the queries' ORDER BY."""
    return (urgent, 0 if last is None else 1, (last or since).timestamp())


def rule_name(rule) -> str:
    if (get_language() or "").startswith("en") and rule.name_en:
        return rule.name_en
    return rule.name


def _subject_key(row) -> tuple[str, int] | None:
    """Which record a task or breach is about, for placing it in a band."""
    if row.opportunity_id:
        return ("opportunity", row.opportunity_id)
    if row.lead_id:
        return ("lead", row.lead_id)
    if row.account_id:
        return ("account", row.account_id)
    return None


# --- the sources ------------------------------------------------------------------------


def _due_tasks(user, end):
    return list(
        Task.objects.open()
        .filter(assignees=user, due_at__lt=end)
        .select_related("lead", "account", "opportunity", "contact")
        .order_by("due_at", "pk")[:500]
    )


def _open_breaches(user, end):
    """Open breaches of ``user`` due before ``end`` (a greeting reminder may be stored
    ahead of its day)."""
    return list(
        Breach.objects.open()
        .filter(owner=user, due_at__lt=end)
        .select_related("rule", "lead", "account", "opportunity", "contact")
        .order_by("due_at", "pk")[:500]
    )


def _orders_in_hand(user, limit):
    qs = (
        Contract.objects.filter(owner=user, status=ContractStatus.ACTIVE, received__gte=F("amount"))
        .select_related("account")
        .annotate(
            pending_shipments=Count(
                "shipments", filter=~Q(shipments__status=ShipmentStatus.DELIVERED)
            )
        )
        .order_by("sign_date", "pk")
    )
    return _fetch(qs, limit)


def _greeting_days(today: date) -> list[date]:
    """Today and the next GREETING_DAYS days (compared by month and day)."""
    return [today + timedelta(days=n) for n in range(GREETING_DAYS + 1)]


def _month_day_q(field_name: str, days) -> Q:
    condition = Q()
    for day in days:
        condition |= Q(**{f"{field_name}__month": day.month, f"{field_name}__day": day.day})
    return condition


def _signed_contracts():
    return Contract.objects.filter(account=OuterRef("pk"), status__in=SIGNED_STATUSES)


def _care_accounts(user, now, today, ids, limit):
    """Customers — won grade, or no grade but a signed contract or order — whose care
    is due."""
    days = _greeting_days(today)
    birthdays = Contact.objects.filter(_month_day_q("birthday", days), account=OuterRef("pk"))
    anniversary = _month_day_q("founded_on", days)
    qs = (
        Account.objects.filter(owner=user)
        .annotate(signed=Exists(_signed_contracts()))
        .filter(Q(grade=Grade.WON) | Q(grade=Grade.NONE, signed=True))
        .annotate(
            last_contact=_last_contact("account"),
            birthday=Subquery(birthdays.order_by("name", "pk").values("birthday")[:1]),
            birthday_name=Subquery(birthdays.order_by("name", "pk").values("name")[:1]),
            anniversary=Case(
                When(anniversary, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),  # fmt: skip
            urgent=_urgent(ids),
        )
        .annotate(
            greeting=Case(
                When(Q(birthday__isnull=False) | Q(anniversary=True), then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
    )
    care_due = (
        Q(greeting=0)
        | (
            ~Q(revisit_status=RevisitStatus.PAUSE)
            & (Q(last_contact__isnull=True) | Q(last_contact__lt=now - timedelta(days=CARE_DAYS)))
        )
        | Q(urgent=0)
    )
    qs = qs.filter(care_due).order_by(
        "urgent", "greeting", F("last_contact").asc(nulls_first=True), "pk"
    )
    return _fetch(qs, limit)


def _unpaid_contracts(user, today, limit):
    qs = with_overdue(
        receivables(Contract.objects.filter(owner=user)).filter(amount__gt=F("received")),
        today,
    ).select_related("account")
    qs = qs.annotate(
        late=Case(When(next_due_date__lt=today, then=Value(0)), default=Value(1),
                  output_field=IntegerField()),  # fmt: skip
    ).order_by(
        "late", F("next_due_date").asc(nulls_last=True), "-overdue_cents", "-receivable_amount",
        "pk",
    )  # fmt: skip
    return _fetch(qs, limit)


def closing_q(today: date) -> Q:
    """Open opportunities about to order (band 3): far down the funnel, or expected
    within CLOSING_DAYS (or already late) and past the first stages."""
    return Q(probability__gte=CLOSING_PROBABILITY) | Q(
        expected_close_date__lte=today + timedelta(days=CLOSING_DAYS),
        probability__gte=CLOSING_SOON_PROBABILITY,
    )


def _open_opportunities(user, ids):
    return (
        Opportunity.objects.filter(owner=user, status=Status.OPEN)
        .select_related("account", "stage")
        .annotate(last_contact=_last_contact("opportunity"), urgent=_urgent(ids))
    )


def _closing(user, today, ids, limit):
    qs = (
        _open_opportunities(user, ids)
        .filter(closing_q(today))
        .annotate(
            weighted=ExpressionWrapper(
                F("amount") * F("probability"), output_field=DecimalField(max_digits=20)
            )
        )
        .order_by("urgent", "-weighted", F("expected_close_date").asc(nulls_last=True), "pk")
    )
    return _fetch(qs, limit)


def _by_contact(qs):
    """Never contacted first (oldest first), then the longest since the last contact."""
    return qs.annotate(contacted=Case(When(last_contact__isnull=True, then=Value(0)),
                                      default=Value(1), output_field=IntegerField()),
                       waiting_since=Coalesce("last_contact", "created_at")).order_by(
        "urgent", "contacted", "waiting_since", "pk"
    )  # fmt: skip


def _inquiry_opportunities(user, today, ids, limit):
    return _fetch(_by_contact(_open_opportunities(user, ids).exclude(closing_q(today))), limit)


def _leads(user, ids, *, recent_since, recent: bool, limit):
    qs = Lead.objects.filter(owner=user, status__in=OPEN_STATUSES)
    window = Q(created_at__gte=recent_since)
    qs = qs.filter(window) if recent else qs.exclude(window)
    qs = qs.annotate(last_contact=_last_contact("lead"), urgent=_urgent(ids))
    return _fetch(_by_contact(qs), limit)


def _cold_accounts(user, ids, limit):
    live = Opportunity.objects.filter(account=OuterRef("pk"), status__in=[Status.OPEN, Status.WON])
    qs = (
        Account.objects.filter(owner=user)
        .exclude(grade=Grade.WON)
        .exclude(Exists(live))
        .exclude(Exists(_signed_contracts()))
        .annotate(last_contact=_last_contact("account"), urgent=_urgent(ids))
        .filter(Q(urgent=0) | ~Q(revisit_status=RevisitStatus.PAUSE))
    )
    return _fetch(_by_contact(qs), limit)


# --- rows → items -------------------------------------------------------------------------


def _contract_title(c) -> str:
    return f"{c.number} {c.title} · {c.account.name}"


def _order_item(c, today) -> Item:
    since = _short(c.sign_date)
    if c.pending_shipments:
        reason = ngettext(
            "Order in hand since %(date)s: %(n)s shipment not delivered yet",
            "Order in hand since %(date)s: %(n)s shipments not delivered yet",
            c.pending_shipments,
        ) % {"date": since, "n": c.pending_shipments}
    else:
        reason = _("Order in hand since %(date)s, paid in full: deliver and complete it") % {
            "date": since
        }
    return Item(
        "contract", c, _contract_title(c), reason, c.get_absolute_url(), c.account.phone,
        "account", c.account_id, c.amount, (1, 0, c.sign_date.toordinal(), c.pk),
    )  # fmt: skip


def _next_date(month_day: date, today: date) -> date:
    """The next occurrence (today or later) of a birthday or anniversary."""
    for year in (today.year, today.year + 1):
        try:
            candidate = month_day.replace(year=year)
        except ValueError:  # 29 February
            continue
        if candidate >= today:
            return candidate
    return today


def _care_item(a, today) -> Item:
    if a.birthday is not None:
        reason = _("%(name)s's birthday on %(date)s: send greetings") % {
            "name": a.birthday_name,
            "date": _short(_next_date(a.birthday, today)),
        }
    elif a.anniversary:
        reason = _("Company anniversary on %(date)s: send greetings") % {
            "date": _short(_next_date(a.founded_on, today))
        }
    else:
        days = _days_since(a.last_contact, today)
        if days is None:
            reason = _("Customer with no contact on record: call at least once a month")
        elif days < CARE_DAYS:
            reason = _("Customer · %(contact)s") % {
                "contact": _contact_reason(a.last_contact, a.created_at, today)
            }
        else:
            reason = ngettext(
                "Customer, no contact for %(days)s day: call at least once a month",
                "Customer, no contact for %(days)s days: call at least once a month",
                days,
            ) % {"days": days}
    last = a.last_contact.timestamp() if a.last_contact else 0
    return Item(
        "account", a, a.name, reason, a.get_absolute_url(), a.phone, "account", a.pk,
        None, (a.urgent, 1, a.greeting, 0 if a.last_contact is None else 1, last, a.pk),
    )  # fmt: skip


def _unpaid_item(c, today) -> Item:
    owed = money(c.receivable_amount, c.currency)
    if c.next_due_date is not None and c.next_due_date < today:
        days = (today - c.next_due_date).days
        reason = ngettext(
            "%(amount)s overdue %(days)s day · %(owed)s outstanding",
            "%(amount)s overdue %(days)s days · %(owed)s outstanding",
            days,
        ) % {"amount": money(c.overdue_amount, c.currency), "days": days, "owed": owed}
    elif c.next_due_date is not None:
        reason = _("%(owed)s outstanding · next instalment due %(date)s") % {
            "owed": owed,
            "date": _short(c.next_due_date),
        }
    else:
        reason = _("%(owed)s outstanding · no payment plan") % {"owed": owed}
    return Item(
        "contract", c, _contract_title(c), reason, c.get_absolute_url(), c.account.phone,
        "account", c.account_id, c.receivable_amount,
    )  # fmt: skip


def _opportunity_title(o) -> str:
    return f"{o.name} · {o.account.name}"


def _closing_item(o, today) -> Item:
    parts = [
        _("%(amount)s at %(probability)s%%")
        % {"amount": money(o.amount, o.currency), "probability": f"{o.probability:.0f}"},
        o.stage.display_name,
    ]
    if o.expected_close_date is not None:
        days = (o.expected_close_date - today).days
        if days < 0:
            parts.append(
                ngettext(
                    "expected close %(date)s, %(days)s day ago",
                    "expected close %(date)s, %(days)s days ago",
                    -days,
                )
                % {"date": _short(o.expected_close_date), "days": -days}
            )
        else:
            parts.append(_("expected close %(date)s") % {"date": _short(o.expected_close_date)})
    if o.next_step:
        parts.append(_("next: %(step)s") % {"step": o.next_step})
    return Item(
        "opportunity", o, _opportunity_title(o), " · ".join(parts), o.get_absolute_url(),
        o.account.phone, "opportunity", o.pk, o.weighted_amount,
        (o.urgent, -(o.amount * o.probability), o.pk),
    )  # fmt: skip


def _inquiry_opportunity_item(o, today) -> Item:
    reason = " · ".join(
        [
            o.stage.display_name,
            _contact_reason(o.last_contact, o.created_at, today),
        ]
    )
    return Item(
        "opportunity", o, _opportunity_title(o), reason, o.get_absolute_url(), o.account.phone,
        "opportunity", o.pk, o.amount, _contact_key(o.urgent, o.last_contact, o.created_at),
    )  # fmt: skip


def _lead_item(lead, today) -> Item:
    reason = " · ".join(
        [lead.get_status_display(), _contact_reason(lead.last_contact, lead.created_at, today)]
    )
    return Item(
        "lead", lead, str(lead), reason, lead.get_absolute_url(), lead.mobile or lead.phone,
        "lead", lead.pk, None, _contact_key(lead.urgent, lead.last_contact, lead.created_at),
    )  # fmt: skip


def _cold_account_item(a, today) -> Item:
    reason = " · ".join([_("No open deal"), _contact_reason(a.last_contact, a.created_at, today)])
    return Item(
        "account", a, a.name, reason, a.get_absolute_url(), a.phone, "account", a.pk, None,
        _contact_key(a.urgent, a.last_contact, a.created_at),
    )  # fmt: skip


def _lone_item(row, now) -> Item:
    """A due task or open breach not about any record in the bands."""
    subject = row.opportunity or row.lead or row.contact or row.account
    subject_type = ""
    if row.opportunity_id:
        subject_type = "opportunity"
    elif row.lead_id:
        subject_type = "lead"
    elif row.account_id:
        subject_type = "account"
    phone = ""
    if row.contact_id:
        phone = row.contact.mobile or row.contact.phone
    elif row.lead_id:
        phone = row.lead.mobile or row.lead.phone
    elif row.account_id:
        phone = row.account.phone
    if isinstance(row, Task):
        kind, title = "task", row.title
        url = subject.get_absolute_url() if subject is not None else row.get_absolute_url()
    else:
        kind, title = "breach", rule_name(row.rule)
        url = subject.get_absolute_url() if subject is not None else reverse("rules:breaches")
    parts = [str(subject)] if subject is not None else []
    parts.append(due_text(row.due_at, now))
    subject_id = {
        "opportunity": row.opportunity_id, "lead": row.lead_id, "account": row.account_id
    }.get(subject_type)  # fmt: skip
    item = Item(
        kind, row, title, " · ".join(parts), url, phone, subject_type, subject_id, lone=True
    )
    if kind == "task":
        item.tasks = [row]
    else:
        item.breaches = [row]
    return item


def due_text(when: datetime, now: datetime) -> str:
    """ "overdue 3 days", "overdue since 09:00", "due today 15:00" (for a task or breach)."""
    today = timezone.localdate(now)
    local = timezone.localtime(when)
    days = (today - local.date()).days
    if days > 0:
        return ngettext("overdue %(days)s day", "overdue %(days)s days", days) % {"days": days}
    if when <= now:
        return _("overdue since %(time)s") % {"time": local.strftime("%H:%M")}
    return _("due today %(time)s") % {"time": local.strftime("%H:%M")}


# --- assembling the list ---------------------------------------------------------------------


def _cut(items: list, limit: int = BAND_LIMIT) -> list:
    """Every urgent item (earliest due first), then the others in order, up to ``limit``."""
    urgent = sorted((i for i in items if i.urgent), key=lambda i: (i.first_due, i.sort_key))
    rest = sorted((i for i in items if not i.urgent), key=lambda i: i.sort_key)
    return urgent + rest[: max(limit - len(urgent), 0)]


def _more(name: str, **params) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"{reverse(name)}?{query}" if query else reverse(name)


def worklist(user, now: datetime | None = None) -> Worklist:
    """``user``'s worklist at ``now`` (default: now): the ``due`` section, then the five
    bands of DOMAIN §7. Counts are of every record in a band; items are what to show."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    end = _midnight(today + timedelta(days=1))
    recent_since = _midnight(today - timedelta(days=RECENT_DAYS))
    labels = band_labels()

    tasks = _due_tasks(user, end)
    breaches = _open_breaches(user, end)
    ids = {"opportunity": set(), "lead": set(), "account": set()}
    for row in [*tasks, *breaches]:
        key = _subject_key(row)
        if key is not None:
            ids[key[0]].add(key[1])
    extra = {name: len(values) for name, values in ids.items()}

    def fetch(source, kind, *args, **kwargs):
        return source(*args, limit=BAND_LIMIT + extra.get(kind, 0), **kwargs)

    orders, n_orders = _orders_in_hand(user, BAND_LIMIT)
    care, n_care = fetch(_care_accounts, "account", user, now, today, ids["account"])
    unpaid, n_unpaid = _unpaid_contracts(user, today, BAND_LIMIT)
    closing, n_closing = fetch(_closing, "opportunity", user, today, ids["opportunity"])
    inquiry_opps, n_inquiry_opps = fetch(
        _inquiry_opportunities, "opportunity", user, today, ids["opportunity"]
    )
    new_leads, n_new_leads = fetch(
        _leads, "lead", user, ids["lead"], recent_since=recent_since, recent=True
    )
    old_leads, n_old_leads = fetch(
        _leads, "lead", user, ids["lead"], recent_since=recent_since, recent=False
    )
    cold, n_cold = fetch(_cold_accounts, "account", user, ids["account"])
    pool_count = Lead.objects.visible_to(user).in_pool().open().count()

    items = {
        "orders": [_order_item(c, today) for c in orders] + [_care_item(a, today) for a in care],
        "unpaid": [_unpaid_item(c, today) for c in unpaid],
        "closing": [_closing_item(o, today) for o in closing],
        "inquiries": [_inquiry_opportunity_item(o, today) for o in inquiry_opps]
        + [_lead_item(lead, today) for lead in new_leads],
        "development": [_lead_item(lead, today) for lead in old_leads]
        + [_cold_account_item(a, today) for a in cold],
    }
    for position, item in enumerate(items["unpaid"]):
        item.sort_key = (1, position)

    # Attach each due task and open breach to its record's line, if the record is listed.
    by_subject = {}
    for key in BAND_KEYS:
        for item in items[key]:
            by_subject.setdefault((item.kind, item.obj.pk), item)
    lone = []
    for row in [*breaches, *tasks]:
        item = by_subject.get(_subject_key(row) or ("", 0))
        if item is None:
            lone.append(_lone_item(row, now))
        elif isinstance(row, Task):
            item.tasks.append(row)
        else:
            item.breaches.append(row)

    for row in tasks:
        row.wl_when, row.wl_overdue = due_text(row.due_at, now), row.due_at <= now
    for row in breaches:
        row.wl_rule, row.wl_when = rule_name(row.rule), due_text(row.due_at, now)

    counts = {
        "orders": n_orders + n_care,
        "unpaid": n_unpaid,
        "closing": n_closing,
        "inquiries": n_inquiry_opps + n_new_leads,
        "development": n_old_leads + n_cold,
    }
    owner = user.pk
    more = {
        "orders": _more("sales:contracts", status="active", owner=owner),
        "unpaid": _more("sales:receivables"),
        "closing": _more("pipeline:opportunities", status="open", owner=owner, sort="-amount"),
        "inquiries": _more("pipeline:opportunities", status="open", owner=owner),
        "development": _more("leads:leads", owner=owner),
    }
    bands = [Band(key, *labels[key], _cut(items[key]), counts[key], more[key]) for key in BAND_KEYS]
    lone.sort(key=lambda i: (i.first_due, i.kind, i.obj.pk))
    due = Band("due", *labels["due"], lone[:DUE_LIMIT], len(lone), reverse("tasks:tasks"))
    return Worklist(user, now, today, due, bands, pool_count)


def parse_day(value) -> date | None:
    """A YYYY-MM-DD day between FIRST_DAY and LAST_DAY, else None."""
    try:
        day = date.fromisoformat(value) if value and len(value) == 10 else None
    except ValueError:
        return None
    return day if day is not None and FIRST_DAY <= day <= LAST_DAY else None


def viewable_users(user):
    """Whose worklist and daily plans ``user`` may read: their own; a manager also their
    team subtree's; an administrator everyone's."""
    from loudou.org.models import User

    if user is None or not user.is_authenticated or not user.is_active:
        return User.objects.none()
    if user.sees_everything:
        return User.objects.filter(is_active=True)
    if user.managed_team_path:
        return User.objects.filter(
            Q(team__path__startswith=user.managed_team_path, is_active=True) | Q(pk=user.pk)
        )
    return User.objects.filter(pk=user.pk)


def plan_context(user, day: date) -> dict:
    """The daily plan of ``user`` on ``day`` for pages and the API: the plan (or None),
    its items with their links, and how many unfinished items of the day before wait to
    be carried over."""
    from .models import DailyPlan, PlanItem
    from .services import unfinished_to_carry

    plan = DailyPlan.objects.filter(user=user, day=day).first()
    items = []
    if plan is not None:
        items = list(
            PlanItem.objects.filter(plan=plan)
            .select_related("task", "lead", "account", "opportunity")
            .annotate(carried=Exists(PlanItem.objects.filter(carried_from=OuterRef("pk"))))
            .order_by("position")
        )
    previous = day - timedelta(days=1)
    return {
        "plan": plan,
        "day": day,
        "items": items,
        "previous_day": previous,
        "next_day": day + timedelta(days=1),
        "carry_in": unfinished_to_carry(user, previous).count(),
        "carry_out": sum(1 for i in items if i.is_unfinished and not i.carried),
    }
