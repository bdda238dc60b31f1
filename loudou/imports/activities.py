"""Importing activities (跟进记录): calls, visits, e-mails, WeChat, meetings and research
from another CRM's follow-up export or a home-made sheet.

Each row is linked to what it was about — an account (by name, or by the external id of
an accounts file imported before), a contact at that account (by name), an opportunity at
that account (by name), and/or a lead (by mobile, e-mail or name) — among the records the
importing user may see, with the rules of ``loudou.activities.services.log_activity``: a
contact or an opportunity brings its account, links naming different accounts are
refused, the time may not be in the future, a duration is 0–1,440 minutes, the purpose
follows from the links when the file does not give it. Written in bulk; the follow-up
state of the linked records (loudou.rules) is refreshed at the end, once.

A duplicate is an activity of the same owner, kind and moment on the same records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.activities.choices import OUTCOME_OPTIONAL, Kind, Outcome, Purpose
from loudou.activities.models import MAX_DURATION_MINUTES, Activity
from loudou.customers.models import Contact
from loudou.leads.models import Lead
from loudou.leads.normalize import normalize_email, normalize_phone
from loudou.pipeline.choices import Status
from loudou.pipeline.models import Opportunity

from . import bulk
from .importers import Importer, _text, normalize_company, visible_accounts
from .models import OnDuplicate
from .values import BadValue, memoized, parse_datetime, parse_decimal, text

# Clocks differ a little; the activities service allows the same.
FUTURE_TOLERANCE = timedelta(minutes=10)


def _words(mapping: dict[str, list[str]]) -> dict[str, str]:
    return {word.casefold(): key for key, words in mapping.items() for word in [key, *words]}


KIND_WORDS = _words({
    Kind.CALL: ["电话", "打电话", "电话沟通", "电话拜访", "来电", "去电", "phone", "phone call"],
    Kind.VISIT: ["拜访", "上门拜访", "上门", "实地拜访", "面访", "外勤", "on-site visit"],
    Kind.EMAIL: ["邮件", "电子邮件", "e-mail", "mail"],
    Kind.WECHAT: ["微信", "企业微信", "weixin", "短信", "sms", "qq"],
    Kind.MEETING: ["会议", "会面", "开会", "见面", "面谈", "视频会议", "线上会议"],
    Kind.RESEARCH: ["调研", "研究", "资料收集", "客户调研"],
    Kind.OTHER: ["其他", "其它", "task", "todo"],
})  # fmt: skip
PURPOSE_WORDS = _words({
    Purpose.PROSPECTING: ["开发", "拓客", "陌拜", "新客开发", "初次接触", "首次拜访"],
    Purpose.FOLLOW_UP: ["跟进", "商机跟进", "follow up", "follow-up", "followup"],
    Purpose.SERVICE: ["服务", "售后", "回访", "客户服务", "维护", "客情维护"],
    Purpose.OTHER: ["其他", "其它"],
})  # fmt: skip
OUTCOME_WORDS = _words({
    Outcome.REACHED: ["已接通", "接通", "有效沟通", "沟通成功", "connected", "answered"],
    Outcome.NOT_REACHED: ["未接通", "无人接听", "未接", "空号", "not reached", "no answer",
                          "busy"],
    Outcome.LEFT_MESSAGE: ["留言", "已留言", "left message", "left voicemail", "voicemail"],
    Outcome.MEETING_HELD: ["已面谈", "见面", "已见面", "meeting held", "completed"],
    Outcome.VISITED: ["已拜访", "拜访成功", "visited"],
    Outcome.CANCELLED: ["取消", "已取消", "canceled", "cancelled"],
    Outcome.OTHER: ["其他", "其它"],
})  # fmt: skip


def _choice(words: dict[str, str], label: str, default: str = ""):
    def parse(value):
        word = text(value).casefold().replace("_", " ")
        if not word:
            return default
        found = words.get(word) or words.get(word.replace(" ", "_"))
        if found is None:
            raise BadValue(_("not a known %s") % label)
        return found

    return memoized(parse)


def parse_minutes(value):
    """Minutes as a whole number 0–1,440 ("30", "30分钟", "1.5h" is not read: minutes)."""
    raw = text(value).lower()
    for suffix in ("分钟", "分", "min", "mins", "minutes"):
        if raw.endswith(suffix):
            raw = raw[: -len(suffix)].strip()
            break
    number = parse_decimal(raw)
    if number is None:
        return None
    if number < 0 or number > MAX_DURATION_MINUTES or number != int(number):
        raise BadValue(_("not a number of minutes between 0 and 1440"))
    return int(number)


class ActivityImporter(Importer):
    kind, file = "activities", "activities"
    parsers = {
        "kind": _choice(KIND_WORDS, _("type of activity"), Kind.OTHER),
        "purpose": _choice(PURPOSE_WORDS, _("purpose")),
        "outcome": _choice(OUTCOME_WORDS, _("outcome")),
        "occurred_at": parse_datetime, "duration_minutes": parse_minutes,
        "gave_what": _text(200), "notes": _text(), "owner": _text(),
        "lead": _text(200), "account": _text(200), "account_external_id": _text(100),
        "contact": _text(100), "opportunity": _text(200),
    }  # fmt: skip

    def before(self, table, mapping) -> None:
        self.latest = timezone.now() + FUTURE_TOLERANCE

    def run(self) -> None:
        super().run()
        # (a dry run rolls the refresh back with everything else)
        refresh_follow_up_state(self.ctx.created.get("activities.activity", []))

    def indexes_kept(self) -> dict:
        return {Activity: ["occurred_at"]}

    def write_batch(self, batch) -> None:
        actor = self.ctx.actor
        parsed = []
        for number, cells, _cells in batch:
            data = self.parse_row(number, cells, self.parsers)
            if "occurred_at" in data and data["occurred_at"] is None:
                self.bad(number, "occurred_at", _("required"))
            elif data.get("occurred_at") and data["occurred_at"] > self.latest:
                self.bad(number, "occurred_at", _("in the future"))
            self.owner(number, data)
            parsed.append((number, data, self.row_bad))
        links = self._links([(n, d) for n, d, _bad in parsed])
        won = set(
            Opportunity.objects.filter(
                account_id__in={d["account_id"] for _n, d, _b in parsed if d.get("account_id")},
                status=Status.WON,
            ).values_list("account_id", flat=True)
        )
        rows = []
        for number, data, bad in parsed:
            self.row_bad = bad
            if not self._link(number, data, links):
                continue
            if not data.get("outcome"):
                # Exports rarely say how a contact went; the service asks for it, the
                # import records "other" (research needs none).
                data["outcome"] = "" if data.get("kind") in OUTCOME_OPTIONAL else Outcome.OTHER
            if not data.get("purpose"):
                data["purpose"] = self._purpose(data, links, won)
            data["gave_something"] = bool(data.get("gave_what"))
            if not self.row_bad:
                rows.append(data)
        self._store(rows, actor)

    # --- links ----------------------------------------------------------------------

    def _links(self, parsed) -> dict:
        """The records the batch names, among those the user may see: accounts by
        normalised name, contacts and opportunities by name at those accounts, leads by
        mobile, e-mail or name."""
        actor = self.ctx.actor
        names = {normalize_company(d["account"]) for _n, d in parsed if d.get("account")}
        accounts = visible_accounts(actor, names)
        for _n, d in parsed:
            external = d.pop("account_external_id", "")
            name = d.get("account", "")
            d["account_id"] = self.ctx.account_external.get(external) or accounts.get(
                normalize_company(name)
            )
            if (external or name) and not d["account_id"]:
                d["_bad_account"] = True
        account_ids = {d["account_id"] for _n, d in parsed if d.get("account_id")}
        contacts, opportunities = {}, {}
        for pk, account_id, name in (
            Contact.objects.visible_to(actor).filter(account_id__in=account_ids)
            .order_by("pk").values_list("pk", "account_id", "name")
        ):  # fmt: skip
            contacts.setdefault((account_id, name.casefold()), pk)
        opp_names = {d["opportunity"] for _n, d in parsed if d.get("opportunity")}
        for pk, account_id, name, status in (
            Opportunity.objects.visible_to(actor).filter(name__in=opp_names)
            .order_by("pk").values_list("pk", "account_id", "name", "status")
        ):  # fmt: skip
            opportunities.setdefault((account_id, name.casefold()), (pk, status))
            opportunities.setdefault((None, name.casefold()), (pk, status, account_id))
        leads = {}
        wanted = {d["lead"] for _n, d in parsed if d.get("lead")}
        if wanted:
            visible = Lead.objects.visible_to(actor).order_by("pk")
            phones = {normalize_phone(w) for w in wanted} - {""}
            emails = {normalize_email(w) for w in wanted if "@" in w}
            for column, keys in (("mobile_key", phones), ("email_key", emails),
                                 ("name", wanted)):  # fmt: skip
                for pk, key in visible.filter(**{f"{column}__in": keys}).values_list("pk", column):
                    leads.setdefault(key, pk)
        return {"contacts": contacts, "opportunities": opportunities, "leads": leads}

    def _link(self, number, data, links) -> bool:
        """Fill the row's link ids; report what cannot be found or does not fit."""
        if data.pop("_bad_account", False):
            self.bad(number, "account", _("no such account (or not yours to see)"))
        account_id = data.get("account_id")
        name = data.pop("opportunity", "")
        data["opportunity_id"] = None
        if name:
            hit = links["opportunities"].get((account_id, name.casefold())) if account_id \
                else links["opportunities"].get((None, name.casefold()))  # fmt: skip
            if hit is None:
                self.bad(number, "opportunity", _("no such opportunity at this account"))
            else:
                data["opportunity_id"], data["_opportunity_status"] = hit[0], hit[1]
                if not account_id:
                    data["account_id"] = account_id = hit[2]
        name = data.pop("contact", "")
        data["contact_id"] = None
        if name:
            pk = links["contacts"].get((account_id, name.casefold())) if account_id else None
            if pk is None:
                self.bad(number, "contact", _("no such contact at this account"))
            data["contact_id"] = pk
        value = data.pop("lead", "")
        data["lead_id"] = None
        if value:
            leads = links["leads"]
            pk = leads.get(normalize_phone(value)) or leads.get(normalize_email(value)) \
                or leads.get(value)  # fmt: skip
            if pk is None:
                self.bad(number, "lead", _("no such lead"))
            data["lead_id"] = pk
        data.pop("account", None)
        if not (account_id or data["lead_id"] or data["opportunity_id"] or data["contact_id"]):
            if not self.row_bad:
                self.bad(number, "account", _("link the activity to an account, contact, "
                                              "opportunity or lead"))  # fmt: skip
            return False
        return not self.row_bad

    @staticmethod
    def _purpose(data, links, won) -> str:
        """As ``activities.services.default_purpose`` decides it, from the batch's sets."""
        if data.get("opportunity_id") and data.get("_opportunity_status") == Status.OPEN:
            return Purpose.FOLLOW_UP
        if data.get("lead_id") and not data.get("opportunity_id"):
            return Purpose.PROSPECTING
        if data.get("account_id") and data["account_id"] not in won:
            return Purpose.PROSPECTING
        return Purpose.SERVICE

    # --- writing --------------------------------------------------------------------

    def _store(self, rows, actor) -> None:
        moments = {d["occurred_at"] for d in rows}
        existing = {}
        for pk, *key in bulk.lookup(
            Activity,
            ("id", "owner_id", "kind", "occurred_at", "lead_id", "account_id", "contact_id",
             "opportunity_id"),
            "occurred_at", [_db_moment(m) for m in moments],
        ):  # fmt: skip
            key[2] = _moment_key(key[2])
            existing.setdefault(tuple(key), pk)
        mode = self.mode
        created = self.ctx.created.get("activities.activity", [])
        new, updates, seen = [], {}, set()
        for data in rows:
            data.pop("_opportunity_status", None)
            key = (data["owner_id"], data["kind"], _moment_key(data["occurred_at"]),
                   data["lead_id"], data["account_id"], data["contact_id"],
                   data["opportunity_id"])  # fmt: skip
            match = existing.get(key)
            if (match or key in seen) and mode != OnDuplicate.CREATE:
                if (
                    match and mode == OnDuplicate.UPDATE and key not in seen
                    and match not in self.updated and not bulk.in_ranges(created, match)
                ):  # fmt: skip
                    self.updated.add(match)
                    updates[match] = {k: data.get(k) for k in (
                        "purpose", "outcome", "duration_minutes", "gave_something",
                        "gave_what", "notes")}  # fmt: skip
                else:
                    self.count("duplicate")
                seen.add(key)
                continue
            seen.add(key)
            new.append(data)
        for data in new:
            self.stamp(data).update(created_by_id=actor.pk, version=1)
        self.insert_new(Activity, new)
        self.update_existing(Activity, updates)


def _db_moment(moment):
    """How ``occurred_at`` is compared in the lookup (what the database stores)."""
    if connection.vendor == "sqlite":
        return str(moment.astimezone(UTC).replace(tzinfo=None))
    return moment


def _moment_key(moment) -> float:
    """A moment as a comparable key, whatever form the database returned it in."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:  # SQLite: naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def ranges_q(ranges) -> Q:
    """Rows whose id lies in one of the [first, last] ``ranges``."""
    q = Q(pk__in=[])
    for first, last in ranges:
        q |= Q(pk__range=(first, last))
    return q


def refresh_follow_up_state(ranges) -> None:
    """The follow-up state (first and last contact) of the records the activities with
    ids in ``ranges`` are linked to, recomputed once for the whole import, as the rules
    app does after a bulk write (loudou.rules.state)."""
    if not ranges:
        return
    from loudou.rules import state

    rows = Activity.objects.filter(ranges_q(ranges)).order_by()
    state.refresh(
        leads=rows.filter(lead__isnull=False).values("lead_id"),
        accounts=rows.filter(account__isnull=False).values("account_id"),
        opportunities=rows.filter(opportunity__isnull=False).values("opportunity_id"),
    )  # fmt: skip
