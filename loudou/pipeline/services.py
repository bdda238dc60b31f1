"""Writes to pipelines and opportunities. Every stage change goes through here.

Lock contract: each opportunity service opens a transaction, locks the opportunity row
(``select_for_update``; on SQLite the IMMEDIATE transaction serialises writers), refuses a
stale ``version`` with :class:`Conflict`, writes the change and one StageChange row, and
bumps the version. A refused action raises before anything is written.
"""

from collections import defaultdict
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, Max, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.core.exceptions import Conflict, ValidationFailed
from loudou.core.hooks import run_checks
from loudou.core.services import check_version
from loudou.customers.choices import Grade
from loudou.customers.models import Account

from . import summaries
from .choices import ChangeKind, ChecklistMode, StageKind, Status
from .models import LostReason, Opportunity, Pipeline, Stage, StageChange
from .templates import DEFAULT_LOST_REASONS, LOST, TEMPLATES, WON

# Relations the services receive as model instances the caller already looked up (and
# scoped); validating them again would cost one query each.
TRUSTED_RELATIONS = ["account", "pipeline", "stage", "furthest_stage", "owner", "created_by",
                     "product_line", "lost_reason"]  # fmt: skip

OPPORTUNITY_FIELDS = {
    "name", "account", "amount", "currency", "expected_close_date", "product_line",
    "source", "competitors", "next_step", "next_step_date", "description", "owner",
}  # fmt: skip


# --- pipelines and stages -----------------------------------------------------------


@transaction.atomic
def create_pipeline_from_template(template: str, *, name=None, name_en=None, **fields) -> Pipeline:
    """Create a pipeline with the stages of one of the four templates (DOMAIN §3)."""
    if template not in TEMPLATES:
        raise ValidationFailed(_("Unknown template."), field="template")
    spec = TEMPLATES[template]
    position = (Pipeline.objects.aggregate(m=Max("position"))["m"] or 0) + 1
    if not name:  # the template's own names, in both languages
        name, name_en = spec["name"][0], name_en or spec["name"][1]
    pipeline = Pipeline.objects.create(
        name=name,
        name_en=name_en or "",
        template=template,
        position=position,
        **fields,
    )
    for index, (code, zh, en, rate, stale, guidance, checklist) in enumerate(spec["stages"]):
        Stage.objects.create(
            pipeline=pipeline, code=code, name=zh, name_en=en, position=(index + 1) * 10,
            default_probability=Decimal(rate), stale_after_days=stale, guidance=guidance,
            checklist=list(checklist),
        )  # fmt: skip
    last = len(spec["stages"]) * 10
    for offset, (kind, (code, zh, en), rate) in enumerate(
        [(StageKind.WON, WON, 100), (StageKind.LOST, LOST, 0)], start=1
    ):
        Stage.objects.create(
            pipeline=pipeline, code=code, name=zh, name_en=en, kind=kind,
            position=last + offset * 10, default_probability=Decimal(rate),
        )  # fmt: skip
    return pipeline


def ensure_lost_reasons() -> None:
    """Install the default lost reasons once."""
    if not LostReason.objects.exists():
        LostReason.objects.bulk_create(
            LostReason(name=zh, name_en=en, position=i)
            for i, (zh, en) in enumerate(DEFAULT_LOST_REASONS)
        )


PIPELINE_FIELDS = {"name", "name_en", "product_line", "checklist_mode", "learn_win_rates",
                   "is_archived"}  # fmt: skip


@transaction.atomic
def update_pipeline(pipeline: Pipeline, **fields) -> Pipeline:
    """Change a pipeline's name, product line, checklist mode or learning switch, or
    archive it. Its stages change through the stage services."""
    locked = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    unknown = set(fields) - PIPELINE_FIELDS
    if unknown:
        raise ValidationFailed(_("These fields cannot be changed: %s") % ", ".join(sorted(unknown)))
    for key, value in fields.items():
        setattr(locked, key, value)
    locked.full_clean()
    locked.save()
    return locked


@transaction.atomic
def update_stage(stage: Stage, **fields) -> Stage:
    """Change a stage. A new default win rate reaches the open opportunities in the stage
    whose probability follows the default, never one a rep set by hand."""
    locked = Stage.objects.select_for_update().get(pk=stage.pk)
    allowed = {"name", "name_en", "default_probability", "guidance", "checklist",
               "stale_after_days", "code"}  # fmt: skip
    unknown = set(fields) - allowed
    if unknown:
        raise ValidationFailed(_("These fields cannot be changed: %s") % ", ".join(sorted(unknown)))
    for key, value in fields.items():
        setattr(locked, key, value)
    locked.full_clean()
    locked.save()
    if "default_probability" in fields:
        Opportunity.objects.filter(
            stage=locked, status=Status.OPEN, probability_manual=False
        ).update(probability=locked.default_probability)
    return locked


@transaction.atomic
def add_stage(pipeline: Pipeline, *, name, name_en="", after: Stage | None = None, **fields):
    """Insert an open stage after ``after`` (default: after the last open stage)."""
    stages = list(pipeline.stages.select_for_update().order_by("position", "pk"))
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    if after is not None and after not in open_stages:
        # After a terminal (or another pipeline's) stage the order would make no sense.
        raise ValidationFailed(_("Choose an open stage of this pipeline."), field="after")
    anchor = after or (open_stages[-1] if open_stages else None)
    index = stages.index(anchor) + 1 if anchor else 0
    stage = Stage(pipeline=pipeline, name=name, name_en=name_en, **fields)
    stages.insert(index, stage)
    stage.position = 0
    stage.full_clean()
    for position, s in enumerate(stages, start=1):
        s.position = position * 10
        s.save()
    return stage


@transaction.atomic
def reorder_stages(pipeline: Pipeline, stage_ids: list[int]) -> None:
    """Put the open stages in the given order (terminals stay last). The furthest stage
    of each opportunity is recomputed from its history, so statistics stay true."""
    open_stages = {s.pk: s for s in pipeline.stages.select_for_update().filter(kind="open")}
    if sorted(stage_ids) != sorted(open_stages):
        raise ValidationFailed(_("Give every open stage of the pipeline exactly once."))
    for position, stage_id in enumerate(stage_ids, start=1):
        Stage.objects.filter(pk=stage_id).update(position=position * 10)
    last = len(stage_ids) * 10
    for offset, stage in enumerate(pipeline.stages.exclude(kind="open").order_by("position")):
        Stage.objects.filter(pk=stage.pk).update(position=last + (offset + 1) * 10)
    recompute_furthest(pipeline)


def recompute_furthest(pipeline: Pipeline) -> None:
    """Set each opportunity's furthest stage to the highest-ordered open stage it ever
    entered, read from StageChange (used after stages are reordered): one UPDATE with a
    correlated subquery (the highest (position, id) among the open stages its history
    entered), run by the database; opportunities without such a row keep theirs. The
    funnel counts of the pipeline are then recounted."""
    entered = StageChange.objects.filter(
        opportunity=OuterRef("pk"), to_stage__kind=StageKind.OPEN
    ).order_by()
    best = entered.order_by("-to_stage__position", "-to_stage_id").values("to_stage_id")[:1]
    Opportunity.objects.filter(pipeline=pipeline).filter(Exists(entered)).update(
        furthest_stage_id=Subquery(best)
    )
    summaries.recount_pipeline(pipeline.pk)


@transaction.atomic
def archive_stage(stage: Stage) -> None:
    """Hide a stage from new work. History keeps pointing at it; refused while open
    opportunities still sit in it."""
    if stage.opportunities.filter(status=Status.OPEN).exists():
        raise Conflict(_("Move the open opportunities out of this stage before archiving it."))
    Stage.objects.filter(pk=stage.pk).update(is_archived=True)


# --- opportunities --------------------------------------------------------------------


def _stay(from_stage, entered, when) -> int | None:
    """Seconds spent in ``from_stage`` since ``entered`` (None: not a completed stay in
    an open stage, e.g. a reopening)."""
    if entered is None or from_stage is None or from_stage.kind != StageKind.OPEN:
        return None
    return max(int((when - entered).total_seconds()), 0)


def _record(opp, kind, from_stage, to_stage, actor, when=None, note="", entered=None):
    """Append one StageChange. ``entered`` is when the opportunity entered ``from_stage``:
    the length of that stay is stored with the row, so time-in-stage statistics need no
    window over the history."""
    when = when or timezone.now()
    return StageChange.objects.create(
        opportunity=opp, kind=kind, from_stage=from_stage, to_stage=to_stage,
        changed_at=when, changed_by=actor, amount=opp.amount, probability=opp.probability,
        note=note, stay_seconds=_stay(from_stage, entered, when),
    )  # fmt: skip


def _change(locked, fields, before, kind, from_stage, to_stage, actor, when, note="",
            entered=None):  # fmt: skip
    """Save the opportunity's ``fields``, append its StageChange and carry both into the
    maintained summaries (pipeline.summaries), in the caller's transaction. The stay
    ended here is added to the opportunity's stays_seconds."""
    stay = _stay(from_stage, entered, when)
    if stay is not None:
        locked.stays_seconds += stay
        fields = [*fields, "stays_seconds"]
    _save(locked, fields)
    change = _record(locked, kind, from_stage, to_stage, actor, when, note, entered)
    summaries.apply(
        before, summaries.snapshot(locked),
        stay=None if stay is None else (from_stage.pk, stay), change_id=change.pk,
    )  # fmt: skip


def _lock(opp: Opportunity, version) -> Opportunity:
    # The deal's row only (OF self): a plain FOR UPDATE would lock its stage and pipeline
    # rows too, and every other transaction that inserts a row pointing at that pipeline
    # (its foreign-key check takes KEY SHARE on it) would wait for this one to end.
    locked = (
        Opportunity.objects.select_for_update(of=("self",))
        .select_related("stage", "pipeline")
        .get(pk=opp.pk)
    )
    check_version(locked, version)
    return locked


def _save(opp: Opportunity, fields: list[str]) -> None:
    opp.version += 1
    opp.save(update_fields=[*fields, "version", "updated_at"])


def _check_checklist(opp: Opportunity, ticks) -> list[str]:
    """Apply the ticks given with the move; refuse (strict) or return (advisory) what is
    still missing on the current stage."""
    if ticks:
        unknown = [t for t in ticks if t not in opp.stage.checklist]
        if unknown:
            raise ValidationFailed(
                _("Not on this stage's checklist: %s") % ", ".join(unknown), field="checklist"
            )
        done = set(opp.ticked(opp.stage)) | set(ticks)
        opp.checklist_done = {**opp.checklist_done, str(opp.stage_id): sorted(done)}
    missing = opp.missing_checklist()
    if missing and opp.pipeline.checklist_mode == ChecklistMode.STRICT:
        raise ValidationFailed(
            _("Before leaving “%(stage)s”, tick: %(items)s")
            % {"stage": opp.stage.display_name, "items": "; ".join(missing)},
            field="checklist",
            code="checklist_incomplete",
        )
    return missing


def _follow_default(opp: Opportunity) -> None:
    if not opp.probability_manual:
        opp.probability = opp.stage.default_probability


def _validate_fields(data: dict) -> None:
    unknown = set(data) - OPPORTUNITY_FIELDS
    if unknown:
        raise ValidationError({field: _("Unknown field.") for field in sorted(unknown)})


@transaction.atomic
def create_opportunity(
    *, actor, pipeline: Pipeline, stage: Stage | None = None, probability=None,
    contacts=(), shared_with=(), when=None, **data,
) -> Opportunity:  # fmt: skip
    """Create an open opportunity in ``stage`` (default: the pipeline's first stage) and
    record its entry as the first StageChange."""
    _validate_fields(data)
    stage = stage or pipeline.open_stages().first()
    if stage is None or stage.pipeline_id != pipeline.pk or stage.kind != StageKind.OPEN:
        raise ValidationFailed(_("Choose an open stage of this pipeline."), field="stage")
    if stage.is_archived:
        raise ValidationFailed(_("This stage is archived."), field="stage")
    when = when or timezone.now()
    data.setdefault("owner", actor)
    data.setdefault("currency", _default_currency())
    opp = Opportunity(
        pipeline=pipeline, stage=stage, furthest_stage=stage, created_by=actor,
        stage_entered_at=when, **data,
    )  # fmt: skip
    if probability is not None:
        opp.probability, opp.probability_manual = Decimal(probability), True
    else:
        opp.probability = stage.default_probability
    opp.full_clean(exclude=TRUSTED_RELATIONS)
    opp.save()
    if when != opp.created_at:  # imports and the demo create opportunities in the past
        Opportunity.objects.filter(pk=opp.pk).update(created_at=when)
        opp.created_at = when
    if contacts:
        opp.contacts.set(contacts)
    if shared_with:
        opp.shared_with.set(shared_with)
    change = _record(opp, ChangeKind.CREATED, None, stage, actor, when)
    summaries.apply(None, summaries.snapshot(opp), change_id=change.pk)
    refresh_account_grade(opp.account_id)
    return opp


def _default_currency():
    from loudou.core.money import default_currency

    return default_currency()


@transaction.atomic
def update_opportunity(
    opp: Opportunity, *, actor, version=None, probability=None, contacts=None,
    shared_with=None, **data,
) -> Opportunity:  # fmt: skip
    """Change an opportunity's fields (not its stage: use the move/win/lose verbs).

    ``probability`` set here is a rep's own judgement: it is kept from then on, whatever
    the stage default becomes. Pass ``probability="default"`` to follow the stage again.
    """
    _validate_fields(data)
    locked = _lock(opp, version)
    before = summaries.snapshot(locked)
    old_account_id = locked.account_id
    for key, value in data.items():
        setattr(locked, key, value)
    if probability == "default":
        locked.probability_manual = False
        _follow_default(locked)
    elif probability is not None:
        locked.probability, locked.probability_manual = Decimal(probability), True
    locked.full_clean(exclude=TRUSTED_RELATIONS)
    locked.version += 1
    locked.save()
    summaries.apply(before, summaries.snapshot(locked))
    if contacts is not None:
        locked.contacts.set(contacts)
    if shared_with is not None:
        locked.shared_with.set(shared_with)
    refresh_account_grade(locked.account_id)
    if old_account_id != locked.account_id:
        refresh_account_grade(old_account_id)
    return locked


@transaction.atomic
def move_opportunity(
    opp: Opportunity, stage: Stage, *, actor, version=None, checklist=(), when=None, note=""
) -> Opportunity:
    """Move an open opportunity to another open stage of its pipeline.

    Forward moves need the current stage's checklist (strict pipelines refuse, advisory
    ones allow); skipping stages counts as passing them; moving back is recorded too and
    never lowers the furthest stage.
    """
    locked = _lock(opp, version)
    if locked.status != Status.OPEN:
        raise Conflict(_("This opportunity is closed; reopen it first."), code="closed")
    if stage.pipeline_id != locked.pipeline_id:
        raise ValidationFailed(_("The stage belongs to another pipeline."), field="stage")
    if stage.kind != StageKind.OPEN:
        raise ValidationFailed(
            _("Use “won” or “lost” to close an opportunity."), field="stage", code="terminal"
        )
    if stage.is_archived:
        raise ValidationFailed(_("This stage is archived."), field="stage")
    if stage.pk == locked.stage_id:
        return locked
    forward = (stage.position, stage.pk) > (locked.stage.position, locked.stage.pk)
    if forward:
        _check_checklist(locked, checklist)
    before = summaries.snapshot(locked)
    previous, entered = locked.stage, locked.stage_entered_at
    when = when or timezone.now()
    locked.stage = stage
    if (stage.position, stage.pk) > (
        locked.furthest_stage.position,
        locked.furthest_stage.pk,
    ):
        locked.furthest_stage = stage
    locked.stage_entered_at = when
    _follow_default(locked)
    _change(locked, ["stage", "furthest_stage", "stage_entered_at", "probability",
                     "checklist_done"], before, ChangeKind.MOVED, previous, stage, actor,
            when, note, entered)  # fmt: skip
    refresh_account_grade(locked.account_id)
    return locked


@transaction.atomic
def win_opportunity(opp: Opportunity, *, actor, version=None, checklist=(), when=None, note=""):
    """Close as won: the deal has passed every stage. Probability becomes 100%."""
    locked = _lock(opp, version)
    if locked.status != Status.OPEN:
        raise Conflict(_("This opportunity is already closed."), code="closed")
    _check_checklist(locked, checklist)
    won = locked.pipeline.terminal(StageKind.WON)
    if won is None:
        raise ValidationFailed(_("This pipeline has no won stage."))
    before = summaries.snapshot(locked)
    previous, entered = locked.stage, locked.stage_entered_at
    when = when or timezone.now()
    locked.status, locked.stage, locked.closed_at = Status.WON, won, when
    locked.stage_entered_at = when
    if not locked.probability_manual:  # a rep's own figure survives a later reopen
        locked.probability = Decimal(100)
    _change(locked, ["status", "stage", "closed_at", "stage_entered_at", "probability",
                     "checklist_done"], before, ChangeKind.WON, previous, won, actor, when,
            note, entered)  # fmt: skip
    refresh_account_grade(locked.account_id)
    return locked


@transaction.atomic
def lose_opportunity(
    opp: Opportunity, reason: LostReason | None, *, actor, version=None, note="", when=None
):
    """Close as lost with a reason. The opportunity keeps the stage it was lost in, which
    is what the funnel counts as "lost at stage k"."""
    locked = _lock(opp, version)
    if locked.status != Status.OPEN:
        raise Conflict(_("This opportunity is already closed."), code="closed")
    if reason is None or not reason.is_active:
        raise ValidationFailed(_("Choose why the deal was lost."), field="reason")
    lost = locked.pipeline.terminal(StageKind.LOST)
    if lost is None:
        raise ValidationFailed(_("This pipeline has no lost stage."))
    run_checks("before_lose", locked, actor=actor)
    before = summaries.snapshot(locked)
    when = when or timezone.now()
    locked.status, locked.closed_at = Status.LOST, when
    locked.lost_reason, locked.lost_note = reason, note
    if not locked.probability_manual:  # a rep's own figure survives a later reopen
        locked.probability = Decimal(0)
    _change(locked, ["status", "closed_at", "lost_reason", "lost_note", "probability"],
            before, ChangeKind.LOST, locked.stage, lost, actor, when, note or reason.name,
            locked.stage_entered_at)  # fmt: skip
    refresh_account_grade(locked.account_id)
    return locked


@transaction.atomic
def reopen_opportunity(opp: Opportunity, *, actor, version=None, when=None, note=""):
    """Reopen a won or lost opportunity in the stage it was closed from."""
    locked = _lock(opp, version)
    if locked.status == Status.OPEN:
        raise Conflict(_("This opportunity is already open."), code="open")
    before = summaries.snapshot(locked)
    when = when or timezone.now()
    if locked.status == Status.WON:
        last_win = locked.stage_changes.filter(kind=ChangeKind.WON).order_by("-changed_at", "-pk")
        win = last_win.first()
        back_to = win.from_stage if win and win.from_stage else locked.furthest_stage
        from_stage = locked.stage
    else:
        back_to = locked.stage
        from_stage = locked.pipeline.terminal(StageKind.LOST) or locked.stage
    locked.status, locked.stage, locked.closed_at = Status.OPEN, back_to, None
    locked.lost_reason, locked.lost_note = None, ""
    locked.stage_entered_at = when
    _follow_default(locked)
    _change(locked, ["status", "stage", "closed_at", "lost_reason", "lost_note",
                     "stage_entered_at", "probability"], before, ChangeKind.REOPENED,
            from_stage, back_to, actor, when, note)  # fmt: skip
    refresh_account_grade(locked.account_id)
    return locked


def tick_checklist(opp: Opportunity, items: list[str], *, actor, version=None) -> Opportunity:
    """Save which items of the current stage's checklist are ticked: exactly ``items``,
    as a checklist form sends them (an item left out is unticked). Never moves."""
    with transaction.atomic():
        locked = _lock(opp, version)
        unknown = [t for t in items if t not in locked.stage.checklist]
        if unknown:
            raise ValidationFailed(
                _("Not on this stage's checklist: %s") % ", ".join(unknown), field="checklist"
            )
        locked.checklist_done = {**locked.checklist_done, str(locked.stage_id): sorted(items)}
        _save(locked, ["checklist_done"])
        return locked


# --- derived account grade ------------------------------------------------------------


GRADE_CODES = ["D", "C", "B", "A"]
# The rule of DOMAIN §4 as a ranking: the furthest open D/C/B/A stage beats 成交 (won),
# which beats no grade; an account's grade is the highest rank among its deals.
_GRADE_RANK = {Grade.NONE: 0, Grade.WON: 1, **{code: 2 + i for i, code in enumerate(GRADE_CODES)}}


def best_grades(rows, best: dict[int, str] | None = None) -> dict[int, str]:
    """The derived grade (DOMAIN §4) of each account among ``rows`` — (account id, the
    deal's status, its stage's D/C/B/A code when the deal is in a D/C/B/A pipeline, else
    None) — folded into ``best`` (account id → grade so far), which is returned. An
    account with no graded deal is left out (its grade is none). The order of the rows
    does not matter: a batch's rows may be folded in as they come."""
    best = {} if best is None else best
    rank, get = _GRADE_RANK, best.get
    for account_id, status, code in rows:
        if status == Status.WON:
            grade = Grade.WON
        elif status == Status.OPEN and code in GRADE_CODES:
            grade = code
        else:
            continue
        if rank[grade] > rank[get(account_id, Grade.NONE)]:
            best[account_id] = grade
    return best


def _grades(account_ids) -> dict[int, str]:
    """The derived grade of each of these accounts that has one (DOMAIN §4): the
    furthest D/C/B/A stage among its open opportunities in a D/C/B/A pipeline, else 成交
    (won) if it has a won deal. One query."""
    rows = (
        Opportunity.objects.filter(account_id__in=account_ids)
        .filter(
            Q(status=Status.OPEN, pipeline__template="dcba", stage__code__in=GRADE_CODES)
            | Q(status=Status.WON)
        )
        .values_list("account_id", "status", "stage__code")
        .order_by()  # no default ordering: its columns would join the DISTINCT
        .distinct()
    )
    return best_grades(rows)


def grade_codes() -> dict[int, str]:
    """Stage id → its D/C/B/A code, for the graded stages of the D/C/B/A pipelines (what
    ``best_grades`` needs of a deal's stage)."""
    graded = Stage.objects.filter(pipeline__template="dcba", code__in=GRADE_CODES)
    return dict(graded.values_list("pk", "code"))


def refresh_account_grade(account_id: int) -> str:
    """Grade = the furthest D/C/B/A stage among the account's open opportunities in a
    D/C/B/A pipeline, else 成交 (won) if it has a won deal, else none (DOMAIN §4)."""
    grade = _grades([account_id]).get(account_id, Grade.NONE)
    Account.objects.filter(pk=account_id).exclude(grade=grade).update(grade=grade)
    return grade


def refresh_account_grades(account_ids) -> None:
    """Account grades (DOMAIN §4) for many accounts at once: the rule of
    ``refresh_account_grade``, one query per 5,000 accounts instead of one per account
    (imports and their undo)."""
    account_ids = list(account_ids)
    for start in range(0, len(account_ids), 5000):
        chunk = account_ids[start : start + 5000]
        best = _grades(chunk)
        set_account_grades({pk: best.get(pk, Grade.NONE) for pk in chunk})


def set_account_grades(grades: dict[int, str]) -> None:
    """Store these grades (account id → grade): one UPDATE per grade and 5,000 accounts,
    of those whose grade differs."""
    by_grade = defaultdict(list)
    for account_id, grade in grades.items():
        by_grade[grade].append(account_id)
    for grade, ids in by_grade.items():
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            Account.objects.filter(pk__in=chunk).exclude(grade=grade).update(grade=grade)
