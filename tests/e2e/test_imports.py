"""The import page in a real browser: upload a lead sheet, the recognised mapping, the
dry run with its bad row, the progress bar moving while the worker runs, the result, undo
after the confirmation."""

import pytest

from loudou.imports.models import ImportJob
from loudou.imports.tasks import run_import
from loudou.leads.models import Lead
from tests.conftest import PASSWORD

SHEET = (
    "线索名称,手机,邮箱,负责人\n"
    "张三,13800000001,z@example.cn,east_rep\n"
    "李四,13800000002,bad-address,east_rep\n"
    "王五,13800000003,,east_rep\n"
)


@pytest.fixture
def media(settings, tmp_path, transactional_db):
    settings.MEDIA_ROOT = tmp_path / "media"


def work(page, job):
    """Run the queued job as the worker would, with the page's polling held off (the
    tests' SQLite connection serves one thing at a time)."""
    page.context.set_offline(True)
    run_import.call(job.pk)
    page.context.set_offline(False)


def test_upload_check_progress_run_and_undo(page, org, media, login, screenshot, tmp_path):
    """An admin uploads a Chinese lead sheet with one bad e-mail, skipping bad rows: the
    layout is recognised, the dry run reports 2 new and row 3's e-mail, the progress bar
    follows the job while it runs, the result shows what was imported, and the undo —
    after the confirmation — removes it."""
    path = tmp_path / "线索.csv"
    path.write_text(SHEET, encoding="utf-8")
    login(page, "admin", PASSWORD)
    page.goto("/imports/?kind=leads")
    page.locator("#file").set_input_files(str(path))
    page.locator("#skip_bad_rows").check()
    page.get_by_test_id("upload").locator("button[type=submit]").click()
    page.get_by_test_id("layout").wait_for()
    assert "zh" in page.get_by_test_id("layout").inner_text()
    page.get_by_test_id("mapping").locator("button[type=submit]").click()
    status = page.get_by_test_id("status")
    status.locator(".progress").wait_for()  # queued: the bar polls the job
    job = ImportJob.objects.get()
    page.context.set_offline(True)
    ImportJob.objects.filter(pk=job.pk).update(total_rows=5, done_rows=2)
    page.context.set_offline(False)
    page.locator(".progress-bar", has_text="40%").wait_for()
    work(page, job)
    counts = page.get_by_test_id("counts")
    counts.wait_for()
    assert Lead.objects.count() == 0
    errors = page.get_by_test_id("errors")
    assert "3" in errors.inner_text() and "邮箱" in errors.inner_text()
    screenshot(page, "import-dry-run.png")
    page.locator("form[action$='/run/'] button").click()
    status.locator(".progress").wait_for()
    work(page, job)
    page.locator("form[action$='/undo/']").wait_for()
    assert sorted(Lead.objects.values_list("name", flat=True)) == ["张三", "王五"]
    assert counts.inner_text().split()[1] == "2"
    screenshot(page, "import-done.png")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("form[action$='/undo/'] button").click()
    page.locator(".alert", has_text="撤销").first.wait_for()
    assert Lead.objects.count() == 0
