"""Downloads of the list pages: the page's filters, only what the user may see, CSV and
xlsx, and the link on each page carrying its current query string."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from python_calamine import CalamineWorkbook

from loudou.customers.services import create_account, create_contact
from loudou.leads.models import PublicPool
from loudou.leads.services import create_lead
from loudou.pipeline import services as pipeline_services


@pytest.fixture
def data(org):
    pipeline_services.ensure_lost_reasons()
    pipeline = pipeline_services.create_pipeline_from_template("dcba")
    mine = create_account(actor=org.admin, name="东方公司", owner=org.east_rep, industry="制造")
    theirs = create_account(actor=org.admin, name="南方公司", owner=org.south_rep)
    create_contact(mine, actor=org.admin, name="王经理", mobile="13800000001")
    create_contact(theirs, actor=org.admin, name="李经理")
    for account, owner, name in ((mine, org.east_rep, "东方一期"), (mine, org.east_rep, "东方二期"),
                                 (theirs, org.south_rep, "南方一期")):  # fmt: skip
        pipeline_services.create_opportunity(actor=owner, pipeline=pipeline, name=name,
                                             account=account, amount=Decimal(1000))  # fmt: skip
    pool = PublicPool.objects.create(name="公海")
    hidden = PublicPool.objects.create(name="华南公海")
    hidden.teams.add(org.south)
    create_lead(actor=org.admin, name="池中线索", mobile="13900000009", pool=pool)
    create_lead(actor=org.admin, name="华南线索", mobile="13900000008", pool=hidden)
    create_lead(actor=org.admin, name="我的线索", mobile="13900000007", owner=org.east_rep)
    return {"pool": pool, "hidden": hidden}


def csv_rows(response):
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_opportunities_with_the_page_filters_and_scope(client, org, data, english):
    """A rep's download holds their own deals only, narrowed by the page's search; the
    list page links to the download with its query string."""
    client.force_login(org.east_rep)
    page = client.get(reverse("pipeline:opportunities"), {"q": "二期"})
    href = reverse("imports:export-page", args=["opportunities"]) + "?q=%E4%BA%8C%E6%9C%9F&amp;"
    assert b'data-testid="download"' in page.content and href.encode() in page.content
    url = reverse("imports:export-page", args=["opportunities"])
    rows = csv_rows(client.get(url, {"format": "csv"}))
    assert rows[0][:3] == ["Name", "Account", "Pipeline"]
    assert sorted(r[0] for r in rows[1:]) == ["东方一期", "东方二期"]
    rows = csv_rows(client.get(url, {"format": "csv", "q": "二期"}))
    assert [r[0] for r in rows[1:]] == ["东方二期"]
    client.force_login(org.admin)
    sheet = client.get(url, {"format": "xlsx"})
    book = CalamineWorkbook.from_filelike(io.BytesIO(sheet.content))
    names = sorted(row[0] for row in book.get_sheet_by_index(0).to_python()[1:])
    assert names == ["东方一期", "东方二期", "南方一期"]


def test_accounts_contacts_and_leads_are_scoped_and_filtered(client, org, data):
    """Accounts by the page's filter, contacts and leads limited to what the rep sees."""
    client.force_login(org.east_rep)
    url = reverse("imports:export-page", args=["accounts"])
    assert [r[0] for r in csv_rows(client.get(url, {"industry": "制造"}))[1:]] == ["东方公司"]
    url = reverse("imports:export-page", args=["contacts"])
    assert [r[0] for r in csv_rows(client.get(url))[1:]] == ["王经理"]
    url = reverse("imports:export-page", args=["leads"])
    names = sorted(r[0] for r in csv_rows(client.get(url))[1:])
    assert "我的线索" in names and "华南线索" not in names


def test_a_pool_download_only_for_a_pool_the_user_may_see(client, org, data):
    """The pool's leads for a pool open to the user; another team's pool is a 404; a
    format other than csv or xlsx is refused."""
    client.force_login(org.east_rep)
    url = reverse("imports:export-page", args=["pool"])
    rows = csv_rows(client.get(url, {"pool": data["pool"].pk}))
    assert [r[0] for r in rows[1:]] == ["池中线索"]
    assert client.get(url, {"pool": data["hidden"].pk}).status_code == 404
    assert client.get(url, {"format": "pdf"}).status_code == 400
    assert client.get(reverse("imports:export-page", args=["nothing"])).status_code == 404
    page = client.get(reverse("leads:pool", args=[data["pool"].pk]))
    assert f"pool={data['pool'].pk}&amp;format=xlsx".encode() in page.content
