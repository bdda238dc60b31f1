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
