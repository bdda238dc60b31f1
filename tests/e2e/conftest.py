"""Browser tests: Playwright (sync API) driving Debian's Chromium against ``live_server``.

Fixtures:
    browser       one Chromium for the whole session
    page          a fresh desktop context (1366x900, Chinese browser) per test
    phone_page    a fresh phone-sized context (390x844, mobile user agent) per test
    login         ``login(page, username, password)``: submits the real login form
    screenshot    ``screenshot(page, "name.png")``: saves to test-artifacts/screenshots/

Every page fails its test if a static file answers 4xx/5xx or a script throws, so a
missing vendor file (htmx, Bootstrap) or a broken script cannot pass unnoticed. On a
failure the page is saved to test-artifacts/screenshots/failures/.

Chromium is /usr/bin/chromium (``LOUDOU_CHROMIUM`` overrides it); ``playwright install`` is
never used. Without it the tests skip, unless ``LOUDOU_TEST_REQUIRE_ALL=1``: then they fail.
"""

import os
import re
import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import LiveServerThread

# Playwright's sync API keeps an event loop in this thread; Django's ORM would refuse to
# run next to it. The tests call the ORM only between browser steps, never concurrently.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("LOUDOU_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
PHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
TIMEOUT_MS = 15_000
E2E_DIR = Path(__file__).resolve().parent


class OneRequestAtATimeServer(ThreadedWSGIServer):
    """The live server for SQLite: its threads share the test's single in-memory
    connection, and two requests on it at once (a page whose lazy htmx panels load
    together) can hang inside SQLite. Connections are still accepted in parallel; the
    application runs one request at a time, and its whole response is read under the lock."""

    def set_app(self, application):
        lock = threading.Lock()

        def one_at_a_time(environ, start_response):
            with lock:
                result = application(environ, start_response)
                try:
                    return [b"".join(result)]
                finally:
                    if hasattr(result, "close"):
                        result.close()

        super().set_app(one_at_a_time)


if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    LiveServerThread.server_class = OneRequestAtATimeServer


def require_all() -> bool:
    return os.environ.get("LOUDOU_TEST_REQUIRE_ALL", "") not in ("", "0")


def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e/ is an ``e2e`` test (``-m "not e2e"`` skips them)."""
    for item in items:
        if E2E_DIR in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep a screenshot of every page a failed test was looking at."""
    report = yield
    if report.when == "call" and report.failed:
        for name in ("page", "phone_page"):
            page = item.funcargs.get(name) if hasattr(item, "funcargs") else None
            if page is None:
                continue
            folder = ARTIFACTS / "failures"
            folder.mkdir(parents=True, exist_ok=True)
            slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid)[-150:]
            try:
                page.screenshot(path=str(folder / f"{slug}-{name}.png"), full_page=True)
            except Exception:  # a failed screenshot must not hide the test's failure
                pass
    return report


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        reason = f"no chromium at {CHROMIUM} (apt-get install -y chromium)"
        if require_all():
            pytest.fail(f"LOUDOU_TEST_REQUIRE_ALL=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        playwright.stop()


def _watched_page(context):
    """A page that records failed static files and uncaught script errors."""
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.problems = []

    def on_response(response):
        if "/static/" in response.url and response.status >= 400:
            page.problems.append(f"{response.status} {response.url}")

    page.on("response", on_response)
    page.on("pageerror", lambda error: page.problems.append(f"script error: {error}"))
    return page


def _open_page(browser, live_server, **options):
    context = browser.new_context(base_url=live_server.url, **options)
    page = _watched_page(context)
    yield page
    problems = list(page.problems)
    context.close()
    if problems:
        pytest.fail("the page had problems:\n" + "\n".join(problems))


@pytest.fixture
def page(browser, live_server):
    """A fresh desktop browser (no cookies) whose preferred language is Chinese."""
    yield from _open_page(browser, live_server, viewport=DESKTOP, locale="zh-CN")


@pytest.fixture
def phone_page(browser, live_server):
    """A fresh phone-sized browser with a mobile user agent and touch."""
    yield from _open_page(
        browser,
        live_server,
        viewport=PHONE,
        user_agent=PHONE_UA,
        is_mobile=True,
        has_touch=True,
        device_scale_factor=2,
        locale="zh-CN",
    )


@pytest.fixture
def login():
    """``login(page, username, password)``: fill in and submit the real login form and
    wait for the next page. Asserts nothing: the caller checks where it landed."""

    def do_login(page, username, password):
        page.goto("/login/")
        form = page.locator("form:has(#id_password)")
        form.locator("#id_username").fill(username)
        form.locator("#id_password").fill(password)
        with page.expect_navigation():
            form.locator("button[type=submit]").click()
        return page

    return do_login


@pytest.fixture(scope="session")
def screenshots_dir():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def screenshot(screenshots_dir):
    """``screenshot(page, "name.png")`` saves the whole page and returns the path."""

    def save(page, name):
        path = screenshots_dir / name
        page.screenshot(path=str(path), full_page=True)
        return path

    return save
