"""The deal and stage-history tables carry no index that another index already makes
redundant, and every column the application looks rows up by, or that a deleted row's
cascade searches, still leads some index (issue 7: each index costs every deal save and
a bulk import's rebuild). Read from the migrated test database, so it holds on SQLite
and, in the PostgreSQL run, on PostgreSQL."""

import pytest
from django.db import connection

from loudou.pipeline.models import Opportunity, StageChange

pytestmark = pytest.mark.django_db

# The columns that must lead an index: lookups of the pages, reports, services and
# imports, and the keys whose referenced rows are deleted (a deal's history cascades).
LEADING = {
    Opportunity: [
        "owner_id",
        "pipeline_id",
        "stage_id",
        "status",
        "created_at",
        "account_id",
        "product_line_id",
    ],
    StageChange: ["opportunity_id", "changed_at"],
}


def _indexes(model) -> dict[str, list[str]]:
    """Plain (non-unique, non-primary) indexes of ``model``'s table: name → columns."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
    return {
        name: info["columns"]
        for name, info in constraints.items()
        if info["index"] and not info["unique"] and not info["primary_key"]
    }


@pytest.mark.parametrize("model", [Opportunity, StageChange], ids=lambda m: m.__name__)
def test_every_looked_up_column_leads_an_index(model):
    """Each column the application filters on alone, or that a cascade from the referenced
    row searches, is the first column of at least one index."""
    leading = {columns[0] for columns in _indexes(model).values()}
    assert [c for c in LEADING[model] if c not in leading] == []


@pytest.mark.parametrize("model", [Opportunity, StageChange], ids=lambda m: m.__name__)
def test_no_single_column_index_is_a_prefix_of_another(model):
    """No one-column index whose column already leads a wider index (the wider one serves
    the same lookups; the narrow one only costs writes). PostgreSQL's text-pattern
    twin of an indexed text column counts as such an index too."""
    indexes = _indexes(model)
    wider = {columns[0] for columns in indexes.values() if len(columns) > 1}
    redundant = sorted(
        name for name, columns in indexes.items() if len(columns) == 1 and columns[0] in wider
    )
    assert redundant == []
