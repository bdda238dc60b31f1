"""Property-based fuzzing of the whole REST API from its own OpenAPI schema (schemathesis).

Every operation in /api/openapi.json gets generated requests (valid and invalid), sent
in-process to the WSGI application with a demo manager's bearer token, on the demo data.
Each response must not be a server error, and a documented response must match its
declared content type and schema. New endpoints are fuzzed automatically.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from loudou.org.models import User
from loudou.org.services import create_token
from loudou.testing import snapshot
from loudou.wsgi import application

MAX_EXAMPLES = 25
CHECKS = [not_a_server_error, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def manager_token(django_db_setup, django_db_blocker, demo_snapshot):
    """A bearer token of demo manager wangjg, on the demo data. Restored once for the
    module in an outer transaction that is rolled back at the end; each test's own
    ``db`` transaction nests inside it, so every operation starts from the same rows."""
    # The requests go straight to the WSGI application, whose request_started/finished
    # signals close "old" connections: on PostgreSQL that would close the test's own
    # connection in the middle of its transaction. Django's test client does the same.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        with django_db_blocker.unblock(), transaction.atomic():
            snapshot.restore(demo_snapshot)
            _row, key = create_token(User.objects.get(username="wangjg"), name="fuzz")
            yield key
            transaction.set_rollback(True)
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


# Loaded at collection time, in-process: generating the schema needs no database. (The lazy
# ``schemathesis.pytest.from_fixture`` loader does not work with pytest 9.)
schema = schemathesis.openapi.from_wsgi("/api/openapi.json", application)


def test_schema_lists_operations():
    """The schema the fuzzer reads is the app's, with the organisation and customer
    operations in it (so the fuzz test below cannot pass by fuzzing nothing)."""
    labels = {op.ok().label for op in schema.get_all_operations()}
    assert "GET /api/v1/me" in labels
    assert "POST /api/v1/accounts" in labels
    assert "PATCH /api/v1/contacts/{contact_id}" in labels


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_conforms_to_schema(case, manager_token, db):
    """No generated request, valid or not, makes the API answer 5xx, and every documented
    response matches its declared content type and schema."""
    # Each request in its own savepoint, undone afterwards: every example starts from the
    # demo data, and a database error in one (on PostgreSQL it aborts the transaction)
    # cannot turn the next ones into 500s.
    savepoint = transaction.savepoint()
    try:
        response = case.call(headers={"Authorization": f"Bearer {manager_token}"})
    finally:
        transaction.savepoint_rollback(savepoint)
    case.validate_response(response, checks=CHECKS)
