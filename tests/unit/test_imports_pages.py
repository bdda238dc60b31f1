"""The import pages: upload, mapping with suggestions, dry-run report, run, undo."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from loudou.customers.models import Account
from loudou.imports.models import ImportJob, SavedMapping

UNKNOWN = b"Firma,Branche,Telefonnummer\nAlpha GmbH,Bau,123\nBeta GmbH,Handel,456\n"


@pytest.fixture(autouse=True)
def immediate_tasks(settings, tmp_path):
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.MEDIA_ROOT = tmp_path / "media"


def test_unknown_layout_mapping_dry_run_run_and_undo(client, org, english):
    """A file with unknown headers goes to the mapping screen; the chosen mapping is
    saved, checked (dry run, nothing written), imported and undone."""
    client.force_login(org.east_mgr)
    page = client.get(reverse("imports:imports"))
    assert page.status_code == 200 and b'data-testid="upload"' in page.content
    upload = SimpleUploadedFile("firmen.csv", UNKNOWN, content_type="text/csv")
    response = client.post(reverse("imports:imports"), {"kind": "accounts", "file": upload})
    job = ImportJob.objects.get()
    assert response.url == reverse("imports:mapping", args=[job.pk])
    mapping = client.get(response.url)
    assert b"Layout not recognised" in mapping.content
    response = client.post(response.url, {"col0": "name", "col1": "industry", "col2": "phone"})
    assert response.url == reverse("imports:job", args=[job.pk])
    assert SavedMapping.objects.get().mapping == {"0": "name", "1": "industry", "2": "phone"}
    report = client.get(response.url)
    assert b"Checked (dry run)" in report.content and Account.objects.count() == 0
    client.post(reverse("imports:run", args=[job.pk]))
    assert sorted(Account.objects.values_list("industry", flat=True)) == ["Bau", "Handel"]
    fragment = client.get(reverse("imports:job", args=[job.pk]), headers={"HX-Request": "true"})
    assert b"<html" not in fragment.content and b'data-testid="counts"' in fragment.content
    client.post(reverse("imports:undo", args=[job.pk]))
    assert Account.objects.count() == 0


def test_mapping_requires_the_required_fields(client, org, english):
    """Leaving the name unmapped is refused with a message; nothing is queued."""
    client.force_login(org.admin)
    upload = SimpleUploadedFile("firmen.csv", UNKNOWN, content_type="text/csv")
    client.post(reverse("imports:imports"), {"kind": "accounts", "file": upload})
    job = ImportJob.objects.get()
    response = client.post(reverse("imports:mapping", args=[job.pk]), {"col1": "industry"},
                           follow=True)  # fmt: skip
    assert b"Choose a column for: name" in response.content
    job.refresh_from_db()
    assert job.status == "uploaded"


def test_reps_cannot_open_the_import_page_and_jobs_are_private(client, org):
    """Reps get 403; a manager cannot open another manager's job (404)."""
    client.force_login(org.east_rep)
    assert client.get(reverse("imports:imports")).status_code == 403
    client.force_login(org.east_mgr)
    upload = SimpleUploadedFile("firmen.csv", UNKNOWN, content_type="text/csv")
    client.post(reverse("imports:imports"), {"kind": "accounts", "file": upload})
    job = ImportJob.objects.get()
    client.force_login(org.south_mgr)
    assert client.get(reverse("imports:job", args=[job.pk])).status_code == 404


@pytest.mark.parametrize(
    "language, history, layout", [("en", "stage history file", "Chinese template (zh)"),
                                  ("zh-hans", "阶段历史文件", "中文模板 (zh)")],
)  # fmt: skip
def test_the_report_names_each_file_and_the_layout_in_the_page_language(
    client, org, tmp_path, language, history, layout
):
    """The report's rows with errors say which file each is in — the uploaded file by
    its name, the history file as such — and the layout by its name with the key the
    CLI takes, in the language of the page (not the internal keys)."""
    from loudou.imports.services import create_job, run_job

    deals = tmp_path / "商机.csv"
    deals.write_text("商机编号,商机名称,客户名称,商机金额,商机阶段\n"
                     "O1,华东仓储,远航物流,abc,谈判\nO2,华南门店,明珠百货,100,谈判\n",
                     encoding="utf-8")  # fmt: skip
    changes = tmp_path / "历史.csv"
    changes.write_text("商机编号,商机阶段,变更时间\nO2,谈判,不是时间\n", encoding="utf-8")
    job = run_job(create_job(actor=org.admin, kind="opportunities", file=deals,
                             history=changes, dry_run=True))  # fmt: skip
    client.force_login(org.admin)
    client.cookies["django_language"] = language
    page = client.get(reverse("imports:job", args=[job.pk])).content.decode()
    rows = page.split('data-testid="errors"')[1].split("</table>")[0]
    assert "<td>商机.csv</td><td>2</td>" in rows and f"<td>{history}</td><td>2</td>" in rows
    assert "<td>opportunities</td>" not in rows and "<td>history</td>" not in rows
    assert layout in page
