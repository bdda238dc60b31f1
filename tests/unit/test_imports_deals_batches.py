"""An all-or-nothing deal import (on PostgreSQL through the background writer, each
batch's COPYs running while the next is read) finds every duplicate and account the
batch-by-batch path finds (skip-bad-rows: each batch committed, looked up after the one
before), whatever batch the earlier row is in, with the account cache cleared on the
way."""

import pytest

from loudou.customers.models import Account
from loudou.imports import importers, opportunities
from loudou.imports.models import JobStatus
from loudou.imports.services import create_job, run_job
from loudou.pipeline.models import Opportunity, StageChange

from .test_imports_grouped import write

HEADER = ["name", "account", "amount", "stage", "status"]
# Batches of two: a row's duplicate (or account) is in the batch just before (perhaps
# still being COPYed), two or more batches before (in the database), in its own
# batch, or older than the import; with an account cache of two, cleared on the way.
ROWS = [
    ["Deal A", "Acme 有限公司", "100", "谈判", "open"],
    ["Deal B", "Beta", "200", "谈判", "open"],
    ["deal a", "ACME有限公司", "101", "谈判", "open"],  # batch 2: the batch before's
    ["Deal C", "Gamma", "300", "谈判", "open"],
    ["Deal D", "Gamma", "400", "谈判", "open"],  # batch 3: its account the batch before's
    ["Deal E", "Delta", "500", "谈判", "open"],
    ["Deal B", "Beta", "201", "谈判", "open"],  # batch 4: two batches before
    ["Deal F", "Old Co", "600", "谈判", "open"],  # an older account
    ["Old Deal", "Old Co", "700", "谈判", "open"],  # batch 5: an older deal
    ["Deal G", "Epsilon", "800", "谈判", "open"],
    ["Deal H", "Epsilon", "900", "谈判", "open"],  # batch 6: the account of the batch before
    ["Deal G", "Epsilon", "801", "谈判", "open"],  # and its deal
    ["Deal I", "Zeta", "1000", "谈判", "open"],  # batch 7
    ["Deal J", "Acme 有限公司", "1100", "谈判", "open"],
    ["Deal K", "Zeta", "1200", "谈判", "open"],  # batch 8: the batch before's account
    ["Deal I", "Zeta", "1001", "谈判", "open"],  # and its deal
    ["Deal L", "", "1300", "谈判", "open"],  # batch 9: no account (a row error)
    ["Deal L", "Eta", "1300", "", "open"],  # no stage (a row error)
]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def outcome(job):
    deals = list(Opportunity.objects.order_by("id").values_list("id", "name", "account__name",
                                                               "amount"))  # fmt: skip
    new_ids = [row[0] for row in deals[1:]]  # the first: the older deal
    account_ids = list(Account.objects.order_by("id").values_list("id", flat=True))[1:]
    return {
        "deals": [row[1:] for row in deals],
        "accounts": sorted(Account.objects.values_list("name", "name_key")),
        "history": StageChange.objects.count(),
        "job": (job.status, job.counts, job.errors),
        "consecutive": consecutive(new_ids) and consecutive(account_ids),
    }


def consecutive(ids):
    return all(b == a + 1 for a, b in zip(ids, ids[1:], strict=False))


def run(org, tmp_path, mode, skip_bad_rows, rows=ROWS):
    StageChange.objects.all().delete()
    Opportunity.objects.all().delete()
    Account.objects.all().delete()
    older = write(tmp_path / "older.csv", HEADER, [["Old Deal", "Old Co", "1", "谈判", "open"]])
    assert run_job(create_job(actor=org.admin, kind="opportunities", file=older)).status \
        == JobStatus.DONE  # fmt: skip
    path = write(tmp_path / "deals.csv", HEADER, rows)
    job = run_job(create_job(actor=org.admin, kind="opportunities", file=path,
                             on_duplicate=mode, skip_bad_rows=skip_bad_rows))  # fmt: skip
    return outcome(job)


@pytest.mark.parametrize("mode", ["skip", "update", "create"])
def test_all_or_nothing_deal_import_finds_what_the_batch_by_batch_import_finds(
    org, tmp_path, monkeypatch, mode
):
    """Every duplicate deal and every account (in the batch just before, earlier batches,
    its own batch, older than the import; the account cache cleared on the way) is found,
    updated or created as in the path that commits each batch before the next: same
    deals, amounts, accounts, history rows, job counts and errors (a file with bad rows
    refused whole), and the new deals' and accounts' ids consecutive in file order."""
    monkeypatch.setattr(importers, "BATCH", 2)
    monkeypatch.setattr(opportunities, "ACCOUNT_CACHE", 2)
    one_transaction = run(org, tmp_path, mode, skip_bad_rows=False)
    errors = one_transaction["job"][2]
    batch_by_batch = run(org, tmp_path, mode, skip_bad_rows=True)
    assert errors == batch_by_batch["job"][2]
    assert [(e["row"], e["column"]) for e in errors] == [(18, "account"), (19, "stage")]
    # All-or-nothing refuses the file for its two bad rows: nothing of it is kept.
    assert one_transaction["job"][0] == JobStatus.REFUSED
    assert one_transaction["deals"] == [("Old Deal", "Old Co", 1)]
    assert batch_by_batch["job"][0] == JobStatus.DONE
    results = {skip: run(org, tmp_path, mode, skip, rows=ROWS[:-2]) for skip in (False, True)}
    assert results[False] == results[True]
    result = results[False]
    assert result["job"][0] == JobStatus.DONE and result["consecutive"]
    accounts = [name for name, _key in result["accounts"]]
    assert accounts == ["Acme 有限公司", "Beta", "Delta", "Epsilon", "Gamma", "Old Co", "Zeta"]
    names = [deal[0] for deal in result["deals"]]
    if mode == "create":
        assert len(names) == 1 + 16
    else:  # the repeats of A, B, G, I and the older deal are duplicates (or updates)
        assert names == ["Old Deal", "Deal A", "Deal B", "Deal C", "Deal D", "Deal E",
                         "Deal F", "Deal G", "Deal H", "Deal I", "Deal J", "Deal K"]  # fmt: skip
        old_amount = result["deals"][0][2]
        assert old_amount == (700 if mode == "update" else 1)
