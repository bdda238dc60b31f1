"""The demo the API and browser tests run on is the demo ``load_demo()`` builds.

The ``demo`` fixture restores a JSON snapshot with bulk inserts instead of running the
services again; these tests prove that shortcut loses nothing.
"""

import json
from datetime import datetime

from loudou.customers.models import Account
from loudou.org.models import User
from loudou.testing import snapshot


def rows(path):
    """Rows by (model, pk), with datetimes compared as instants (SQLite and PostgreSQL
    write the same time with different digits)."""

    def norm(value):
        if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return value
        return value

    return {
        (row["model"], row["pk"]): {k: norm(v) for k, v in row["fields"].items()}
        for row in json.loads(path.read_text())
    }


def test_restore_gives_back_every_row(demo, demo_snapshot, tmp_path):
    """Saving the restored demo again gives the same rows, field for field: ids,
    foreign keys, many-to-many links and the original timestamps (not "now")."""
    again = snapshot.save(tmp_path / "again.json")
    before, after = rows(demo_snapshot), rows(again)
    assert set(after) == set(before)
    changed = [key for key in before if before[key] != after[key]]
    assert not changed, f"{len(changed)} rows differ, e.g. {changed[:3]}"
    assert Account.objects.filter(shared_with__isnull=False).exists()


def test_new_rows_get_fresh_ids_after_restore(demo):
    """After the restore, creating a row does not collide with a restored id (the
    sequences were moved past them on PostgreSQL)."""
    highest = Account.objects.order_by("-pk").values_list("pk", flat=True).first()
    rep = User.objects.get(username="zhangwei")
    account = Account.objects.create(name="新客户有限公司", owner=rep)
    assert account.pk > highest
