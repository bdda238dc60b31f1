"""Saved column mappings are per user, shared on request; a workbook's sheet is chosen on
the mapping page, the command line and the API."""

import io

import pytest
import xlsxwriter
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from loudou.customers.models import Account
from loudou.imports.models import ImportJob, SavedMapping

UNKNOWN = b"Firma,Branche\nAlpha GmbH,Bau\n"


@pytest.fixture(autouse=True)
def immediate_tasks(settings, tmp_path):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(client, name="firmen.csv", content=UNKNOWN, kind="accounts"):
    client.post(reverse("imports:imports"), {
        "kind": kind, "file": SimpleUploadedFile(name, content)})  # fmt: skip
    return ImportJob.objects.latest("pk")


def chosen(page, index):
    """The field selected for column ``index`` on the mapping page."""
    html = page.content.decode()
    start = html.index(f'name="col{index}"')
    select = html[start : html.index("</select>", start)]
    return select.split(" selected>")[0].rsplit('value="', 1)[1].split('"')[0] \
        if " selected>" in select else ""  # fmt: skip


def test_a_mapping_is_offered_to_its_author_and_to_others_only_when_shared(client, org, english):
    """east_mgr's confirmed mapping fills in east_mgr's next file with those headers, not
    south_mgr's; once east_mgr shares it, south_mgr's page is filled in and says whose
    it is; south_mgr's own mapping then comes before the shared one."""
    client.force_login(org.east_mgr)
    job = upload(client)
    client.post(reverse("imports:mapping", args=[job.pk]), {"col0": "name", "col1": "industry"})
    saved = SavedMapping.objects.get()
    assert (saved.created_by, saved.shared) == (org.east_mgr, False)
    again = client.get(reverse("imports:mapping", args=[upload(client).pk]))
    assert chosen(again, 1) == "industry" and b"Your saved mapping" in again.content
    client.force_login(org.south_mgr)
    other = client.get(reverse("imports:mapping", args=[upload(client).pk]))
    assert chosen(other, 1) == "" and b'data-testid="saved-mapping"' not in other.content
    client.force_login(org.east_mgr)
    job = upload(client)
    client.post(reverse("imports:mapping", args=[job.pk]),
                {"col0": "name", "col1": "industry", "share": "on"})  # fmt: skip
    assert SavedMapping.objects.get().shared is True
    client.force_login(org.south_mgr)
    other = client.get(reverse("imports:mapping", args=[upload(client).pk]))
    assert chosen(other, 1) == "industry" and b"The mapping east_mgr shared" in other.content
    job = upload(client)
    client.post(reverse("imports:mapping", args=[job.pk]), {"col0": "name", "col1": "notes"})
    mine = client.get(reverse("imports:mapping", args=[upload(client).pk]))
    assert chosen(mine, 1) == "notes" and SavedMapping.objects.count() == 2


def workbook(path=None):
    """Two sheets: a cover sheet, then the accounts."""
    buffer = io.BytesIO() if path is None else path
    book = xlsxwriter.Workbook(buffer)
    cover = book.add_worksheet("说明")
    cover.write_row(0, 0, ["本文件由旧系统导出"])
    data = book.add_worksheet("客户")
    data.write_row(0, 0, ["客户名称", "客户行业"])
    data.write_row(1, 0, ["星河有限公司", "制造"])
    book.close()
    return buffer.getvalue() if path is None else path


def test_the_mapping_page_reads_the_sheet_the_user_chooses(client, org, english):
    """A workbook with several sheets offers a choice; the chosen sheet's header is shown
    and mapped, and the import reads that sheet."""
    client.force_login(org.admin)
    job = upload(client, "客户.xlsx", workbook())
    page = client.get(reverse("imports:mapping", args=[job.pk]))
    assert b'data-testid="sheet-choice"' in page.content and "说明".encode() in page.content
    page = client.get(reverse("imports:mapping", args=[job.pk]), {"sheet": "客户"})
    assert b"Recognised layout: Chinese template (zh)." in page.content
    client.post(reverse("imports:mapping", args=[job.pk]),
                {"sheet": "客户", "col0": "name", "col1": "industry"})  # fmt: skip
    job.refresh_from_db()
    assert job.options["sheet"] == "客户" and job.status == "checked", job.message
    client.post(reverse("imports:run", args=[job.pk]))
    assert list(Account.objects.values_list("name", "industry")) == [("星河有限公司", "制造")]


def test_command_line_and_api_take_a_sheet(org, tmp_path, client):
    """``loudou import --sheet`` and the API's ``sheet`` field read that sheet; a sheet
    that does not exist fails the job with its name."""
    path = workbook(str(tmp_path / "客户.xlsx"))
    call_command("import", "accounts", path, "--sheet", "客户", "--user", "admin")
    assert Account.objects.get().name == "星河有限公司"
    client.force_login(org.admin)
    with open(path, "rb") as handle:
        response = client.post("/api/v1/imports", {"kind": "accounts", "sheet": "没有",
                                                   "file": handle})  # fmt: skip
    assert response.status_code == 201 and response.json()["options"]["sheet"] == "没有"
    client.post(f"/api/v1/imports/{response.json()['id']}/run")
    job = client.get(f"/api/v1/imports/{response.json()['id']}").json()
    assert job["status"] == "failed" and "没有" in job["message"]
