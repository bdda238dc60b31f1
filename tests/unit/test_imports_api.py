"""The import API: upload, dry run, run, status and undo; who may use it."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from loudou.customers.models import Account
from loudou.imports.models import ImportJob

CSV = "客户名称,客户行业\n甲公司,制造\n乙公司,零售\n乙公司,零售\n".encode("gbk")


@pytest.fixture(autouse=True)
def immediate_tasks(settings, tmp_path):
    """Run queued tasks at once, and keep uploads in a temporary folder."""
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    settings.MEDIA_ROOT = tmp_path / "media"


def upload(client, headers, **data):
    files = {"file": SimpleUploadedFile("客户.csv", CSV, content_type="text/csv")}
    return client.post("/api/v1/imports", {"kind": "accounts", **data, **files}, headers=headers)


def test_upload_check_run_status_undo(client, org, bearer):
    """A manager uploads a GBK file, checks it (nothing written, the duplicate counted),
    runs it, reads the result and undoes it."""
    headers = bearer(org.east_mgr)
    response = upload(client, headers)
    assert response.status_code == 201, response.content
    job_id = response.json()["id"]
    checked = client.post(f"/api/v1/imports/{job_id}/check", headers=headers).json()
    assert checked["status"] in ("queued", "checked")
    status = client.get(f"/api/v1/imports/{job_id}", headers=headers).json()
    assert status["status"] == "checked"
    assert (status["counts"]["new"], status["counts"]["duplicate"]) == (2, 1)
    assert Account.objects.count() == 0
    client.post(f"/api/v1/imports/{job_id}/run", headers=headers)
    status = client.get(f"/api/v1/imports/{job_id}", headers=headers).json()
    assert status["status"] == "done" and status["progress"] == 100
    assert sorted(Account.objects.values_list("name", flat=True)) == ["乙公司", "甲公司"]
    again = client.post(f"/api/v1/imports/{job_id}/run", headers=headers)
    assert again.status_code == 409
    undone = client.post(f"/api/v1/imports/{job_id}/undo", headers=headers)
    assert undone.status_code == 200 and undone.json()["status"] == "undone"
    assert Account.objects.count() == 0


def test_reps_may_not_import_and_others_jobs_are_404(client, org, bearer):
    """A rep is refused (403, nothing stored); another manager's job is a 404."""
    refused = upload(client, bearer(org.east_rep))
    assert refused.status_code == 403 and not ImportJob.objects.exists()
    job_id = upload(client, bearer(org.east_mgr)).json()["id"]
    assert client.get(f"/api/v1/imports/{job_id}", headers=bearer(org.south_mgr)).status_code \
        == 404  # fmt: skip
    assert client.get(f"/api/v1/imports/{job_id}", headers=bearer(org.admin)).status_code == 200


def test_bad_upload_answers_4xx(client, org, bearer):
    """An unknown kind or format is a 422, never a 500."""
    headers = bearer(org.admin)
    assert upload(client, headers, kind="planets").status_code == 422
    assert upload(client, headers, format="excel97").status_code == 422
