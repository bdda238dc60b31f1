"""PostgreSQL: the foreign keys of the imports' COPYs checked once per batch
(``loudou.core.db.ForeignKeyChecks``) instead of by the row-by-row triggers, where the
database role may set ``session_replication_role``: every key of every bulk-loaded model
checked, the error the trigger raises, nothing landed, the same KEY SHARE locks, the same
rows as the triggers' path, which a role without the grant still takes."""

import threading
import time

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import DateField, DateTimeField, DecimalField, IntegerField
from django.utils import timezone

from loudou.core import db
from loudou.customers.models import Account, Contact
from loudou.imports import bulk, importers
from loudou.imports.engine import OwnerResolver
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job
from loudou.leads.models import Lead, PoolEvent, PublicPool
from loudou.org.models import Region, User
from loudou.org.services import create_user
from loudou.pipeline.models import (
    LostReason,
    Opportunity,
    Pipeline,
    ProductLine,
    Stage,
    StageChange,
)

from .test_imports_grouped import deals_and_history, facts, run_import

pytestmark = pytest.mark.postgres_only

# What the importers COPY with ForeignKeyChecks (leads; accounts, contacts; deals).
BULK_MODELS = [Lead, PoolEvent, Account, Contact, Opportunity, StageChange]
MISSING = 10**12


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def checks_made(monkeypatch):
    """Every ForeignKeyChecks made (one per importer run), to read what it did."""
    made = []
    real = db.ForeignKeyChecks.__init__

    def init(self):
        real(self)
        made.append(self)

    monkeypatch.setattr(db.ForeignKeyChecks, "__init__", init)
    return made


def fast_copies(made) -> int:
    return sum(checks.fast for checks in made)


def database_keys(model) -> set[tuple[str, str, str, str]]:
    """(column, referenced table, referenced column, constraint) of every foreign key the
    database declares on ``model``'s table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname, c.confrelid::regclass::text, fa.attname, c.conname "
            "FROM pg_constraint c "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey) "
            "JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = ANY(c.confkey) "
            "WHERE c.conrelid = %s::regclass AND c.contype = 'f'",
            [model._meta.db_table],
        )
        return set(cursor.fetchall())


def model_keys(model) -> set[tuple[str, str, str]]:
    return {
        (f.column, f.target_field.model._meta.db_table, f.target_field.column)
        for f in model._meta.concrete_fields
        if f.is_relation and f.db_constraint
    }


@pytest.mark.django_db
def test_bulk_loaded_tables_have_no_trigger_or_rule_but_their_foreign_keys():
    """Replica mode skips every trigger and rule, not only the foreign keys' checks. On
    each table the imports COPY into there is no trigger of anyone's (not internal), no
    rule, and every INSERT trigger is the check of a foreign key the model declares — the
    keys the database has are exactly the model's. A trigger, rule, deferrable unique
    constraint or key added later fails this test (and, at run time, sends that table's
    COPYs down the triggers' path: ForeignKeyChecks._plan answers None)."""
    checks = db.ForeignKeyChecks()
    for model in BULK_MODELS:
        table = model._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [table],
            )
            assert cursor.fetchall() == [], table
            cursor.execute("SELECT rulename FROM pg_rules WHERE tablename = %s", [table])
            assert cursor.fetchall() == [], table
            cursor.execute(
                "SELECT t.tgfoid::regproc::text, c.contype FROM pg_trigger t "
                "LEFT JOIN pg_constraint c ON c.oid = t.tgconstraint "
                "WHERE t.tgrelid = %s::regclass AND t.tgtype & 4 <> 0",
                [table],
            )
            inserts = cursor.fetchall()
        assert inserts and set(inserts) == {('"RI_FKey_check_ins"', "f")}, table
        declared = database_keys(model)
        assert {key[:3] for key in declared} == model_keys(model), table
        assert len(inserts) == len(declared), table
        plan = checks._plan(model)
        assert plan is not None, table
        assert {(k["column"], k["constraint"]) for k in plan["keys"]} == {
            (column, name) for column, _t, _c, name in declared
        }


def _references(org):
    """One row of every table the bulk-loaded models point at."""
    pipeline = Pipeline.objects.create(name="外键", position=90)
    stage = Stage.objects.create(pipeline=pipeline, name="S", position=10)
    account = Account.objects.create(name="甲", name_key="甲", owner=org.admin,
                                     created_by=org.admin)  # fmt: skip
    opp = Opportunity.objects.create(name="乙", account=account, pipeline=pipeline,
                                     stage=stage, furthest_stage=stage, owner=org.admin,
                                     created_by=org.admin)  # fmt: skip
    return {
        User: org.admin, Region: Region.objects.first(), Pipeline: pipeline, Stage: stage,
        ProductLine: ProductLine.objects.create(name="线", code="fk-line"),
        PublicPool: PublicPool.objects.create(name="外键公海"), Account: account,
        Contact: Contact.objects.create(account=account, name="丙"), Opportunity: opp,
        LostReason: LostReason.objects.create(name="价格"),
        Lead: Lead.objects.create(name="丁", owner=org.admin, created_by=org.admin),
    }  # fmt: skip


def _row(model, refs, now) -> dict:
    """A valid row of ``model`` with every foreign key set (a lead or an account is owned,
    not pooled: it may not be both)."""
    row = {}
    for f in model._meta.concrete_fields:
        if f.primary_key:
            continue
        if f.is_relation:
            row[f.attname] = refs[f.related_model].pk
        elif f.null or f.has_default():
            continue
        elif f.choices:
            row[f.attname] = f.choices[0][0]
        elif isinstance(f, DateTimeField):
            row[f.attname] = now
        elif isinstance(f, DateField):
            row[f.attname] = now.date()
        elif isinstance(f, DecimalField | IntegerField):
            row[f.attname] = 1
        else:
            row[f.attname] = "x"
    if model in (Lead, Account):
        row["pool_id"] = None
    return row


def _trigger_error(model, row) -> str:
    """The message of the error the foreign-key trigger raises for ``row``."""
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        bulk.insert_rows(model, [row])
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    return str(caught.value)


def test_each_foreign_key_of_each_bulk_loaded_model_is_checked(org):
    """For each model the imports COPY, and each of its foreign keys (from the model's
    _meta, compared with the database's above), a batch whose row points at a missing
    row is refused before anything is written, with the trigger's own error (same class,
    same message: the constraint, the column, the value, the table), while the same row
    pointing at existing rows goes in through the per-batch check (no trigger)."""
    refs = _references(org)
    now = timezone.now()
    checks = db.ForeignKeyChecks()
    for model in BULK_MODELS:
        base = _row(model, refs, now)
        with transaction.atomic():
            before = checks.fast
            (pk,) = bulk.allocate_ids(model, 1)
            bulk.insert_rows(model, [{"id": pk, **base}], checks=checks)
            assert checks.fast == before + 1, model  # the per-batch path, not the triggers
            assert model.objects.filter(pk=pk).exists()
        keys = [f for f in model._meta.concrete_fields if f.is_relation]
        assert {f.column for f in keys} == {key[0] for key in database_keys(model)}
        for field in keys:
            (pk,) = bulk.allocate_ids(model, 1)
            bad = {**base, "id": pk, field.attname: MISSING}
            if model in (Lead, Account) and field.attname == "pool_id":
                bad["owner_id"] = None
            with pytest.raises(IntegrityError) as caught, transaction.atomic():
                bulk.insert_rows(model, [bad], checks=checks)
            assert not model.objects.filter(pk=pk).exists()
            message = str(caught.value)
            assert f'Key ({field.column})=({MISSING}) is not present in table ' \
                f'"{field.related_model._meta.db_table}"' in message  # fmt: skip
            assert message == _trigger_error(model, bad), (model, field.name)


def test_a_lead_pointing_at_a_missing_user_fails_with_the_triggers_error(
    org, tmp_path, monkeypatch, checks_made
):
    """A lead import (batches of 2, the background writer) whose third row names a user id
    that does not exist fails with the error the trigger path gives — the same job message
    — and nothing of it stays; the per-batch path was the one taken."""
    monkeypatch.setattr(importers, "BATCH", 2)
    real = OwnerResolver.resolve
    monkeypatch.setattr(
        OwnerResolver, "resolve", lambda self, v: MISSING if v == "ghost" else real(self, v)
    )
    path = tmp_path / "l.csv"
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("线索名称,手机,负责人\n")
        for i in range(7):
            handle.write(f"线索{i},1390000{i:04d},{'ghost' if i == 2 else ''}\n")

    def run():
        job = run_job(create_job(actor=org.admin, kind="leads", file=path))
        assert job.status == JobStatus.FAILED
        assert Lead.objects.count() == 0 and PoolEvent.objects.count() == 0
        return job.message

    fast = run()
    assert fast_copies(checks_made) == 2  # the first batch's two COPYs
    assert f"Key (owner_id)=({MISSING}) is not present in table" in fast
    monkeypatch.setattr(db.ForeignKeyChecks, "permitted", False)
    assert run() == fast
    assert fast_copies(checks_made) == 2


def test_every_table_a_deal_import_writes_takes_the_per_batch_path(
    org, tmp_path, monkeypatch, checks_made
):
    """A deal import with stage history (batches of 5, accounts created from the file)
    COPYs its accounts, deals and stage changes with the per-batch checks, every batch:
    none is left to the row-by-row triggers, whose checks would all run at COMMIT
    (21 s of a 100,000-deal import, when two of the three writes had lost their checks)."""
    monkeypatch.setattr(importers, "BATCH", 5)
    deals, history = deals_and_history(12)
    history = [row for row in history if row[2] != "not a date"]
    job = run_import(org, tmp_path, deals, history, "tables")
    assert job.status == JobStatus.DONE, (job.message, job.errors)
    assert job.counts["new"] == 12 and job.counts["history_rows"] > 12
    tables = {}
    for checks in checks_made:
        for table, n in checks.fast_tables.items():
            tables[table] = tables.get(table, 0) + n
    batches = 3  # 12 deals, 5 to a batch; a batch whose accounts exist creates none
    assert tables.pop(Account._meta.db_table) >= 1
    assert tables == {Opportunity._meta.db_table: batches, StageChange._meta.db_table: batches}


def _plain_role_import(org, tmp_path, name, checks_made):
    """The lead and deal imports run as the current connection's role: their facts and
    how many COPYs took the per-batch path."""
    before = fast_copies(checks_made)
    leads = run_job(create_job(actor=org.admin, kind="leads",
                               file=LEADS_FILE(tmp_path / f"{name}.csv")))  # fmt: skip
    assert leads.status == JobStatus.DONE, (leads.message, leads.errors)
    deals, history = deals_and_history(12)
    history = [row for row in history if row[2] != "not a date"]
    job = run_import(org, tmp_path, deals, history, name)
    assert job.status == JobStatus.DONE, (job.message, job.errors)
    return lead_facts(), facts(), fast_copies(checks_made) - before


def LEADS_FILE(path):  # noqa: N802 -- a constant-like helper
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("name,company,mobile,email,owner,pool\n")
        for i in range(9):
            pool = "外键公海" if i % 3 == 0 else ""
            owner = "east_rep" if i % 3 == 1 else ""
            handle.write(f"线索{i},公司{i},1390000{i:04d},l{i}@example.cn,{owner},{pool}\n")
    return path


def lead_facts():
    return sorted(
        (lead.name, lead.mobile_key, lead.email_key, lead.owner_id, lead.pool_id,
         lead.status, lead.created_by_id,
         sorted(lead.events.values_list("kind", "pool_id", "owner_id", "by_id")))
        for lead in Lead.objects.all()
    )  # fmt: skip


def _wipe(*, pipelines=True):
    """Delete what the imports wrote (children first)."""
    StageChange.objects.all().delete()
    Opportunity.objects.all().delete()
    Account.objects.all().delete()
    PoolEvent.objects.all().delete()
    Lead.objects.all().delete()
    if pipelines:
        Pipeline.objects.all().delete()


@pytest.fixture
def plain_role(transactional_db):
    """A role that is not a superuser, with the privileges the app needs on its tables;
    ``plain_role(True)`` connects as it, ``plain_role(False)`` as the superuser again."""
    settings = connection.settings_dict
    superuser = settings["USER"]
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE loudou_plain LOGIN")
        cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO loudou_plain")
        cursor.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO loudou_plain")

    def connect(plain: bool):
        connection.close()
        settings["USER"] = "loudou_plain" if plain else superuser
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_user, (SELECT rolsuper FROM pg_roles "
                           "WHERE rolname = current_user)")  # fmt: skip
            assert cursor.fetchone() == ("loudou_plain", False) if plain else True

    try:
        yield connect
    finally:
        connect(False)
        with connection.cursor() as cursor:
            cursor.execute("DROP OWNED BY loudou_plain")
            cursor.execute("DROP ROLE loudou_plain")


def test_a_role_without_the_grant_takes_the_triggers_path_and_gets_the_same_rows(
    org, tmp_path, plain_role, checks_made
):
    """The same lead file (owned and pooled leads) and deal file with history imported
    three times: as the superuser (the per-batch checks: COPYs taken that way), connected
    as a role that is not a superuser and has no grant (no COPY taken that way: the
    row-by-row triggers, as before), and as that role once granted SET on
    session_replication_role (the per-batch checks again) — identical leads, pool
    events, deals and stage history each time."""
    PublicPool.objects.create(name="外键公海")
    first = _plain_role_import(org, tmp_path, "super", checks_made)
    assert first[2] > 0 and first[0] and first[1][0]
    _wipe()
    plain_role(True)
    plain = _plain_role_import(org, tmp_path, "plain", checks_made)
    assert plain[2] == 0
    assert plain[:2] == first[:2]
    plain_role(False)
    _wipe()
    with connection.cursor() as cursor:
        cursor.execute("GRANT SET ON PARAMETER session_replication_role TO loudou_plain")
    plain_role(True)
    granted = _plain_role_import(org, tmp_path, "granted", checks_made)
    assert granted[2] > 0
    assert granted[:2] == first[:2]
    plain_role(False)
    with connection.cursor() as cursor:
        cursor.execute("REVOKE SET ON PARAMETER session_replication_role FROM loudou_plain")


def elsewhere(sql, params=(), *, wait=True):
    """Run ``sql`` (or call it) on another connection (its own thread, autocommit);
    returns the thread and a dict that gets its error, if any."""
    outcome = {}

    def work():
        try:
            if callable(sql):
                sql()
            else:
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
        except Exception as error:  # noqa: BLE001 -- handed to the test
            outcome["error"] = error
        finally:
            outcome["done"] = True
            connection.close()

    thread = threading.Thread(target=work)
    thread.start()
    if wait:
        thread.join(30)
    return thread, outcome


def waiting_on_a_lock(seconds=20) -> bool:
    """Whether another backend is waiting on a lock (polled up to ``seconds``)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        with connection.cursor() as cursor:  # (read afresh: a transaction keeps its copy)
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND pid <> pg_backend_pid()")  # fmt: skip
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False


def _leads_of(path, owner, count):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("线索名称,手机,负责人\n")
        for i in range(count):
            handle.write(f"线索{i},1390000{i:04d},{owner}\n")
    return path


@pytest.mark.django_db(transaction=True)
def test_a_user_deleted_by_another_connection_mid_import_refuses_the_batch(
    org, tmp_path, monkeypatch, checks_made
):
    """The owner named by the file is found, then deleted and committed by another
    connection before the batch is written: the batch is refused with the trigger's error
    (Key (owner_id)=(…) is not present in table "org_user") and nothing lands."""
    ghost = create_user("ghost", name="ghost")
    monkeypatch.setattr(importers, "BATCH", 2)
    real = OwnerResolver.resolve

    def resolve(self, value):
        found = real(self, value)
        if value == "ghost":
            _thread, outcome = elsewhere("DELETE FROM org_user WHERE id = %s", [found])
            assert "error" not in outcome, outcome
        return found

    monkeypatch.setattr(OwnerResolver, "resolve", resolve)
    job = run_job(create_job(actor=org.admin, kind="leads",
                             file=_leads_of(tmp_path / "l.csv", "ghost", 5)))  # fmt: skip
    assert job.status == JobStatus.FAILED
    assert f'Key (owner_id)=({ghost.pk}) is not present in table "org_user"' in job.message
    assert Lead.objects.count() == 0 and PoolEvent.objects.count() == 0
    assert not User.objects.filter(pk=ghost.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_a_stage_deleted_by_another_connection_mid_import_refuses_the_deals(
    org, tmp_path, monkeypatch, checks_made
):
    """A deal import into existing pipelines: one of their stages (C 目标, where open deals
    stand and many deals passed) deleted and committed by another connection after the
    import read the pipelines, before its first batch is written — the import fails with
    the trigger's error naming pipeline_stage, and none of its deals or history stays."""
    from loudou.imports import opportunities

    deals, history = deals_and_history(12)
    history = [row for row in history if row[2] != "not a date"]
    first = run_import(org, tmp_path, deals, history, "first")  # makes the pipelines
    assert first.status == JobStatus.DONE, (first.message, first.errors)
    _wipe(pipelines=False)
    doomed = Stage.objects.get(pipeline__name="东区", name="C 目标").pk
    real = opportunities.OpportunityImporter._write

    def write(self, opps):
        if Stage.objects.filter(pk=doomed).exists():
            _thread, outcome = elsewhere(Stage.objects.filter(pk=doomed).delete)
            assert "error" not in outcome, outcome
        return real(self, opps)

    monkeypatch.setattr(opportunities.OpportunityImporter, "_write", write)
    job = run_import(org, tmp_path, deals, history, "second")
    assert job.status == JobStatus.FAILED
    assert f'=({doomed}) is not present in table "pipeline_stage"' in job.message
    assert fast_copies(checks_made) > 0  # (the first import's)
    assert Opportunity.objects.count() == 0 and StageChange.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_deleting_a_user_the_import_points_at_waits_for_its_commit(
    org, tmp_path, monkeypatch, checks_made
):
    """While an all-or-nothing lead import runs (batches of 2), another connection's
    DELETE of the user its written leads are owned by waits — the KEY SHARE lock the
    per-batch check took, as the trigger would have — until the import commits, and then
    fails (the leads point at the user): the user and every lead stay, consistent."""
    owner = create_user("holder", name="holder")
    monkeypatch.setattr(importers, "BATCH", 2)
    real = importers.LeadImporter.update_existing
    deleter = {}

    def update_existing(self, model, updates):
        if self.written == 4 and not deleter:  # two batches written (synced before)
            deleter["thread"], deleter["outcome"] = elsewhere(
                "DELETE FROM org_user WHERE id = %s", [owner.pk], wait=False
            )
            assert waiting_on_a_lock(), deleter
            assert "done" not in deleter["outcome"]
        return real(self, model, updates)

    monkeypatch.setattr(importers.LeadImporter, "update_existing", update_existing)
    job = run_job(create_job(actor=org.admin, kind="leads",
                             file=_leads_of(tmp_path / "l.csv", "holder", 9)))  # fmt: skip
    assert job.status == JobStatus.DONE, (job.message, job.errors)
    assert fast_copies(checks_made) > 0
    deleter["thread"].join(30)
    error = deleter["outcome"].get("error")
    assert isinstance(error, IntegrityError) and "org_user" in str(error)
    assert User.objects.filter(pk=owner.pk).exists()
    assert Lead.objects.filter(owner=owner).count() == 9


def test_the_callers_statements_never_run_in_a_copys_replica_window(org, monkeypatch):
    """With the background writer, a checked COPY is several statements (checks, replica
    mode on, COPY, origin again). A statement the caller runs meanwhile (here while the
    COPY is held up inside its replica window) waits for the whole of it: it sees
    session_replication_role = origin, so its triggers fire as always."""
    in_window = threading.Event()
    real = db._copy

    def slow_copy(cursor, sql, types, values):
        cursor.execute("SELECT current_setting('session_replication_role')")
        assert cursor.fetchone()[0] == "replica"
        in_window.set()
        time.sleep(0.5)
        real(cursor, sql, types, values)

    monkeypatch.setattr(db, "_copy", slow_copy)
    now = timezone.now()
    with transaction.atomic():
        checks = db.ForeignKeyChecks()
        assert checks.permitted
        writer = db.CopyWriter()
        try:
            ids = bulk.allocate_ids(Lead, 2)
            bulk.insert_tuples(
                Lead, ("id", "name", "owner_id", "created_at", "updated_at"),
                [(pk, "线索", org.admin.pk, now, now) for pk in ids],
                writer=writer, checks=checks,
            )  # fmt: skip
            assert in_window.wait(10)
            with connection.cursor() as cursor:
                cursor.execute("SELECT current_setting('session_replication_role')")
                assert cursor.fetchone()[0] == "origin"
            assert checks.fast == 1
        finally:
            writer.close()
        assert Lead.objects.filter(pk__in=ids).count() == 2
