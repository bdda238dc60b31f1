"""N+1 guards: list pages and API lists cost the same number of queries for 5 or 50 rows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loudou.customers.services import create_account, create_contact

URLS = ["/customers/", "/customers/contacts/", "/api/v1/accounts", "/api/v1/contacts"]


def add_accounts(org, start, stop):
    """Accounts spread over two owners, each with a region, a collaborator and a contact."""
    for i in range(start, stop):
        owner = org.east_rep if i % 2 else org.sub_rep
        account = create_account(
            actor=owner, name=f"Account {i:03d}", region=org.shanghai, shared_with=[org.east_rep2]
        )
        create_contact(account, actor=owner, name=f"Contact {i:03d}")


def count_queries(client, url, headers):
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, headers=headers)
    assert response.status_code == 200
    return len(queries), response


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("username", ["east_mgr", "east_rep2", "admin"])
def test_list_query_count_does_not_grow(client, org, bearer, url, username):
    """A list costs as many queries with 50 rows as with 5, for every kind of reader."""
    user = getattr(org, username)
    headers = {}
    if url.startswith("/api/"):
        headers = bearer(user)
    else:
        client.force_login(user)
    add_accounts(org, 0, 5)
    count_queries(client, url, headers)  # warm up: session, language, content types
    few, response = count_queries(client, url, headers)
    assert _rows(response) == 5

    add_accounts(org, 5, 50)
    many, response = count_queries(client, url, headers)
    assert _rows(response) == 50
    assert many == few, f"{url} as {username}: {few} queries for 5 rows, {many} for 50"


def _rows(response):
    """How many rows a list answer holds, for the page or the API."""
    if response["Content-Type"].startswith("application/json"):
        return len(response.json()["items"])
    return len(response.context["page"].object_list)
