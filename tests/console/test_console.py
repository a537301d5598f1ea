"""The web console, driven through a real headless Chromium (Debian's ``chromium``).

Playwright's Python API drives the browser; the browser itself is the system's
``/usr/bin/chromium`` (Playwright's own browser downloads are never used). Without it the
module is skipped, unless ``APITOKENS_REQUIRE_BROWSER=1`` (as in CI), which makes it fail.

The main scenario and the bad-CIDR test use the suite's ``server`` fixture (a fresh, real
``apitokens serve`` per test and backend, with ``.url`` and ``.admin``, the bootstrap
administrator's token value); the other browser tests share one real SQLite server for the
module. The CIDR validator tests only need the static files, served by a local file server.

The scenario test writes a screenshot of each main screen to a temporary directory
(``APITOKENS_SCREENSHOT_DIR=docs/screenshots`` refreshes the documentation's).
"""

from __future__ import annotations

import functools
import http.server
import ipaddress
import os
import re
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from apitokens.console import STATIC_DIR
from support.clients import tls
from support.contract import UPSTREAM_PERMISSIONS
from support.databases import sqlite_url
from support.inprocess import bootstrap_here
from support.processes import CLEAN_EXIT_STATUSES, RunningServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    if os.environ.get("APITOKENS_REQUIRE_BROWSER") == "1":
        pytest.fail(
            f"{CHROMIUM} is missing and APITOKENS_REQUIRE_BROWSER=1 (apt-get install chromium)",
            pytrace=False,
        )
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import (  # noqa: E402  (after the skip: only import when usable)
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    ViewportSize,
    expect,
    sync_playwright,
)

pytestmark = pytest.mark.browser

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = Path(
    os.environ.get("APITOKENS_SCREENSHOT_DIR")
    or Path(tempfile.gettempdir()) / f"apitokens-screenshots-{os.getuid()}"
)
"""A temporary directory, so a test run leaves the checkout clean; to refresh the
documentation's, run with APITOKENS_SCREENSHOT_DIR=docs/screenshots."""
STORAGE_KEY = "apitokens.console.token"
VIEWPORT: ViewportSize = {"width": 1280, "height": 860}
TIMEOUT_MS = 15_000

ALL_PERMISSIONS = UPSTREAM_PERMISSIONS


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    b = playwright_instance.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(
        viewport=VIEWPORT,
        permissions=["clipboard-read", "clipboard-write"],
        color_scheme="light",
        locale="en-US",
        timezone_id="UTC",
    )
    ctx.set_default_timeout(TIMEOUT_MS)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    """A fresh tab; the test fails if the console throws an uncaught JavaScript error."""
    errors: list[str] = []
    p = context.new_page()
    p.on("pageerror", lambda exc: errors.append(str(exc)))
    yield p
    assert errors == [], errors


@pytest.fixture
def server(sqlite_server: RunningServer) -> RunningServer:
    """A fresh server per scenario test, on SQLite: the console speaks HTTP only, so the
    database behind it changes nothing it can see (the API's behaviour on PostgreSQL is
    tested in process and by the scale-out tests)."""
    return sqlite_server


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One real server (SQLite) shared by the tests that need no fresh database.

    The scenario tests use ``server`` (a fresh server per test); the others only need *a*
    server and clean up the tokens they create, so they
    share this one instead of paying a server start each.
    """
    directory = tmp_path_factory.mktemp("console-server")
    url = sqlite_url(directory / "apitokens.db")
    server = RunningServer(url, admin=bootstrap_here(url), log_dir=directory / "logs")
    server.start()
    try:
        yield server
    finally:
        status = server.stop()
        assert status in CLEAN_EXIT_STATUSES, f"exit status {status}\n{server.log_tail()}"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {  # noqa: RUF012  (the base class declares it as a plain dict)
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
    }

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    """The console's static files alone (no API), for tests of browser-only logic."""
    handler = functools.partial(_QuietHandler, directory=str(STATIC_DIR))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# ---------------------------------------------------------------------------- helpers


def base(server: Any) -> str:
    return str(server.url).rstrip("/")


def client(server: Any, token: str | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=base(server),
        headers={"X-API-Key": token if token is not None else server.admin},
        timeout=10,
        verify=tls(),
    )


def all_tokens(server: Any) -> list[dict[str, Any]]:
    tokens: list[dict[str, Any]] = []
    cursor = None
    with client(server) as c:
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            r = c.get("/api-tokens", params=params)
            assert r.status_code == 200, r.text
            body = r.json()
            tokens.extend(body["results"])
            cursor = body.get("next")
            if not cursor:
                return tokens


def token_by_name(server: Any, name: str) -> dict[str, Any]:
    matches = [t for t in all_tokens(server) if t["name"] == name]
    assert len(matches) == 1, matches
    return matches[0]


def status_of(server: Any, token: str, path: str = "/api-tokens/self") -> int:
    with client(server, token) as c:
        return c.get(path).status_code


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def shot(page: Page, name: str) -> None:
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"), full_page=True)


def open_console(page: Page, server: Any) -> None:
    page.goto(f"{base(server)}/console/")
    expect(page.locator("body[data-ready=true]")).to_be_attached()


def sign_in(page: Page, server: Any, token: str | None = None) -> None:
    open_console(page, server)
    page.get_by_label("API token", exact=True).fill(token if token is not None else server.admin)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("heading", name="Tokens", exact=True)).to_be_visible()


def row_of(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.get_by_role("row").filter(has=page.get_by_text(name, exact=True))


def fill_create_form(
    page: Page, name: str, permissions: list[str], cidrs: str = "", expiry: str = ""
) -> None:
    if not page.get_by_role("heading", name="Create a token").is_visible():
        page.get_by_role("button", name="New token").click()
    page.get_by_label("Name", exact=True).fill(name)
    for p in permissions:
        page.get_by_label(p, exact=True).check()
    page.get_by_label("Allowed CIDR blocks").fill(cidrs)
    if expiry:
        page.get_by_label("Expires (optional, your local time)").fill(expiry)


def confirm_dialog(page: Page, button: str, grace: int | None = None) -> None:
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    if grace is not None:
        dialog.get_by_label("Grace period (seconds)").fill(str(grace))
    dialog.get_by_role("button", name=button, exact=True).click()
    expect(dialog).to_be_hidden()


# ---------------------------------------------------------------------------- static checks


def test_static_files_are_self_contained() -> None:
    for name in ("index.html", "app.js", "style.css", "cidr.js", "permissions.js"):
        assert (STATIC_DIR / name).is_file(), name
    for path in STATIC_DIR.iterdir():
        text = path.read_text(encoding="utf-8")
        # Nothing is fetched from elsewhere: no absolute URLs, no protocol-relative ones.
        assert not re.search(r"https?://|[\"'(]//[a-z]", text, re.IGNORECASE), path.name
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    # Assets are relative (the console works under /console/ and behind a path prefix) and
    # there is no inline script, so a strict Content-Security-Policy can be used.
    assert 'src="app.js"' in html
    assert 'href="style.css"' in html
    assert re.findall(r"<script\b[^>]*>", html) == ['<script type="module" src="app.js">']
    assert " style=" not in html


def test_permission_catalog_is_complete(page: Page, static_url: str) -> None:
    page.goto(f"{static_url}/index.html")
    names = page.evaluate(
        """async () => {
            const m = await import("./permissions.js");
            return {all: m.PERMISSIONS, grouped: m.PERMISSION_GROUPS.flatMap(g => g.names)};
        }"""
    )
    assert names["all"] == ALL_PERMISSIONS
    assert sorted(names["grouped"]) == ALL_PERMISSIONS  # each name in exactly one group


CIDR_CASES = [
    "10.0.0.0/8",
    "10.0.0.1",
    "0.0.0.0/0",
    "192.168.1.0/24",
    "192.168.1.7/32",
    "2001:db8::/32",
    "2001:DB8::/32",
    "::1",
    "::/0",
    "fe80::/10",
    "::ffff:10.0.0.0/104",
    "2001:db8:0:0:0:0:0:1/128",
    "1:2:3:4:5:6:7::",
    "::1.2.3.4",
    "10.0.0.1/8",
    "192.168.1.5/24",
    "2001:db8::1/32",
    "fe80::1/10",
    "2001:db8:1:2:3:4:5:6/64",
    "not-a-cidr",
    "10.0.0.256",
    "10.0.0/8",
    "10.0.0.0/33",
    "10.0.0.0/-1",
    "10.0.0.0/",
    "/8",
    "2001:db8::/129",
    "1:2:3:4:5:6:7:8:9",
    "1::2::3",
    "2001:db8:::/32",
    "gggg::",
    "10.0.0.0/8/8",
    "010.0.0.0/8",
    "1.2.3.4.5",
    ":::",
]


def test_cidr_validator_agrees_with_python(page: Page, static_url: str) -> None:
    """The browser check follows the server's rules (Python's ``ipaddress``, strict)."""
    page.goto(f"{static_url}/index.html")
    results = page.evaluate(
        """async (cases) => {
            const m = await import("./cidr.js");
            return cases.map(c => m.validateCidr(c));
        }""",
        CIDR_CASES,
    )
    for case, result in zip(CIDR_CASES, results, strict=True):
        try:
            ipaddress.ip_network(case, strict=True)
        except ValueError:
            assert not result["ok"], case
            try:
                expected = str(ipaddress.ip_network(case, strict=False))
            except ValueError:
                assert (
                    "not an IPv4 or IPv6" in result["message"] or "prefix" in result["message"]
                ), (case, result)
            else:
                assert result.get("suggestion") == expected, (case, result)
                assert "host bits" in result["message"], (case, result)
                assert expected in result["message"], (case, result)
        else:
            assert result["ok"], (case, result)


def test_cidr_list_handles_blank_lines_duplicates_and_limit(page: Page, static_url: str) -> None:
    page.goto(f"{static_url}/index.html")
    out = page.evaluate(
        """async () => {
            const m = await import("./cidr.js");
            const many = Array.from({length: 101}, (_, i) => `10.0.${i}.0/24`).join("\\n");
            return {
                mixed: m.validateCidrList("10.0.0.0/8\\n\\n  10.0.0.0/8 \\n::1\\n"),
                zone: m.validateCidr("fe80::1%eth0"),
                many: m.validateCidrList(many),
            };
        }"""
    )
    assert out["mixed"] == {"blocks": ["10.0.0.0/8", "::1"], "errors": []}
    assert not out["zone"]["ok"]
    assert len(out["many"]["errors"]) == 1
    assert "At most 100" in out["many"]["errors"][0]


def test_sign_in_page_without_api(page: Page, static_url: str) -> None:
    """The sign-in form works even with no API behind it: it reports the failure."""
    page.goto(f"{static_url}/index.html")
    token = page.get_by_label("API token", exact=True)
    expect(token).to_be_visible()
    expect(token).to_have_attribute("type", "password")
    assert token.get_attribute("name") is None  # never part of a form submission / URL
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Paste a token first.")).to_be_visible()


# ---------------------------------------------------------------------------- real server


def test_console_scenario(page: Page, context: BrowserContext, server: Any) -> None:
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    # Sign in.
    open_console(page, server)
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "sign-in")
    page.get_by_label("API token", exact=True).fill(server.admin)
    page.get_by_role("button", name="Sign in").click()
    with client(server) as c:
        me = c.get("/api-tokens/self").json()
    expect(page.locator("#whoami")).to_contain_text(f"Signed in as {me['name']}")
    expect(row_of(page, me["name"])).to_contain_text("this session")
    shot(page, "token-list")

    # Create with two permissions and CIDR blocks (loopback included, so the new token
    # can be used from this test).
    name = unique("console-ci")
    before = len(all_tokens(server))
    fill_create_form(page, name, ["AlertRead", "RuleRead"], "127.0.0.0/8\n2001:db8::/32\n")
    expect(page.get_by_text("2 of 39 selected")).to_be_visible()
    shot(page, "create-form")
    page.get_by_role("button", name="Create token").click()

    # The value is shown once, with a note; Copy puts exactly that value in the clipboard.
    panel = page.get_by_role("region", name=f"Token “{name}” created")
    expect(panel).to_be_visible()
    expect(panel).to_contain_text("will not be shown again")
    value = page.get_by_label("Token value", exact=True).input_value()
    assert value
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(panel.get_by_role("status")).to_have_text("Copied to the clipboard.")
    assert page.evaluate("navigator.clipboard.readText()") == value
    assert status_of(server, value) == 200
    assert len(all_tokens(server)) == before + 1
    page.mouse.move(0, 0)
    shot(page, "value-shown")

    # The list shows the new token with its permissions and CIDR blocks.
    created = token_by_name(server, name)
    assert sorted(created["permissions"]) == ["AlertRead", "RuleRead"]
    row = row_of(page, name)
    expect(row).to_have_count(1)
    for text in ["AlertRead", "RuleRead", *created["allowedCIDRBlocks"]]:
        expect(row).to_contain_text(text)
    expect(row).to_contain_text("never")  # last used / expiry

    # Dismissing the panel removes the value from the page.
    page.get_by_role("button", name="I have saved it, hide the value").click()
    expect(panel).to_be_hidden()
    assert page.get_by_label("Token value", exact=True).input_value() == ""
    assert value not in page.content()

    # Rotate, confirmed in the console's own dialog: the old value stops, the new one works.
    page.get_by_role("button", name=f"Rotate {name}", exact=True).click()
    expect(page.get_by_role("dialog")).to_contain_text(f"Rotate “{name}”?")
    shot(page, "rotate-confirm")
    confirm_dialog(page, "Rotate")
    rotated_panel = page.get_by_role("region", name=f"Token “{name}” rotated")
    expect(rotated_panel).to_be_visible()
    new_value = page.get_by_label("Token value", exact=True).input_value()
    assert new_value and new_value != value
    assert status_of(server, value) == 401
    assert status_of(server, new_value) == 200
    page.get_by_role("button", name="I have saved it, hide the value").click()

    # Delete, confirmed: the token is gone from the list and from the API.
    page.get_by_role("button", name=f"Delete {name}", exact=True).click()
    expect(page.get_by_role("dialog")).to_contain_text("cannot be restored")
    confirm_dialog(page, "Delete")
    expect(row_of(page, name)).to_have_count(0)
    with client(server) as c:
        assert c.get(f"/api-tokens/{created['id']}").status_code == 404
    assert status_of(server, new_value) == 401

    # The token lives in sessionStorage only: not in a cookie, the URL or localStorage.
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") == server.admin
    assert server.admin not in page.evaluate("document.cookie")
    assert server.admin not in page.url
    assert page.evaluate("JSON.stringify(localStorage)") == "{}"
    assert all(server.admin not in url for url in requests)
    assert context.cookies() == []
    # ... and nothing was fetched from anywhere but the service itself.
    assert all(url.startswith(base(server) + "/") for url in requests), requests

    # Sign out forgets it.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") is None


def test_bad_cidr_is_refused_in_the_form(page: Page, server: Any) -> None:
    sign_in(page, server)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    before = len(all_tokens(server))
    name = unique("bad-cidr")

    fill_create_form(page, name, ["AlertRead"], "10.0.0.1/8\nnot-a-cidr\n")
    page.get_by_role("button", name="Create token").click()
    cidr = page.get_by_label("Allowed CIDR blocks")
    expect(cidr).to_have_attribute("aria-invalid", "true")
    errors = page.locator("#create-cidrs-error")
    expect(errors).to_contain_text("“10.0.0.1/8” has host bits set; did you mean 10.0.0.0/8?")
    expect(errors).to_contain_text("“not-a-cidr” is not an IPv4 or IPv6 address")
    expect(page.get_by_text("nothing was sent")).to_be_visible()
    shot(page, "create-form-invalid")

    # IPv6 with host bits set gets the network form too.
    cidr.fill("2001:db8::1/32")
    page.get_by_role("button", name="Create token").click()
    expect(errors).to_contain_text("did you mean 2001:db8::/32?")

    page.wait_for_timeout(300)
    assert posts == []
    assert len(all_tokens(server)) == before
    assert not any(t["name"] == name for t in all_tokens(server))

    # Fixing the input lets the create through.
    cidr.fill("10.0.0.0/8")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("region", name=f"Token “{name}” created")).to_be_visible()
    assert len(posts) == 1
    created = token_by_name(server, name)
    assert created["allowedCIDRBlocks"] == ["10.0.0.0/8"]
    with client(server) as c:
        assert c.delete(f"/api-tokens/{created['id']}").status_code == 204


def test_create_form_requires_name_and_permission(page: Page, shared_server: Any) -> None:
    server = shared_server
    sign_in(page, server)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.get_by_role("button", name="New token").click()
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_text("Give the token a name.")).to_be_visible()
    expect(page.get_by_text("Choose at least one permission.")).to_be_visible()
    page.wait_for_timeout(200)
    assert posts == []


def test_permission_picker_select_all_and_filter(page: Page, shared_server: Any) -> None:
    server = shared_server
    sign_in(page, server)
    page.get_by_role("button", name="New token").click()
    boxes = page.locator("#perm-groups input[type=checkbox]")
    expect(boxes).to_have_count(39)
    assert sorted(boxes.evaluate_all("bs => bs.map(b => b.value)")) == ALL_PERMISSIONS

    page.get_by_label("Select all").check()
    expect(page.get_by_text("39 of 39 selected")).to_be_visible()
    page.get_by_label("Select all").uncheck()
    expect(page.get_by_text("0 of 39 selected")).to_be_visible()

    # Filtering narrows the list; "select all" then selects only what is shown.
    page.get_by_label("Filter permissions").fill("apitoken")
    visible = page.locator("#perm-groups input[type=checkbox]:visible")
    expect(visible).to_have_count(2)
    page.get_by_label("Select all").check()
    expect(page.get_by_text("2 of 39 selected")).to_be_visible()
    page.get_by_label("Filter permissions").fill("")
    expect(page.get_by_label("OrganizationAPITokenRead", exact=True)).to_be_checked()
    expect(page.get_by_label("OrganizationAPITokenModify", exact=True)).to_be_checked()
    expect(page.get_by_label("AlertRead", exact=True)).not_to_be_checked()

    # All permissions, an expiry, then the API has exactly what was asked for.
    name = unique("everything")
    page.get_by_label("Select all").check()
    fill_create_form(page, name, [], "", "2099-01-02T03:04")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("region", name=f"Token “{name}” created")).to_be_visible()
    created = token_by_name(server, name)
    assert sorted(created["permissions"]) == ALL_PERMISSIONS
    assert created["allowedCIDRBlocks"] in ([], None)
    assert created["expiresAt"].startswith("2099-01-02T03:04")  # the context runs in UTC
    expect(row_of(page, name)).to_contain_text("all 39")
    expect(row_of(page, name)).to_contain_text("2099-01-02 03:04 UTC")
    expect(row_of(page, name)).to_contain_text("any address")
    with client(server) as c:
        assert c.delete(f"/api-tokens/{created['id']}").status_code == 204


def test_wrong_token_shows_the_server_message(page: Page, shared_server: Any) -> None:
    server = shared_server
    with client(server, "not-a-real-token") as c:
        r = c.get("/api-tokens/self")
    assert r.status_code == 401
    open_console(page, server)
    page.get_by_label("API token", exact=True).fill("not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_have_text(r.json()["message"])
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") is None


def test_server_refusal_shows_the_server_message(page: Page, shared_server: Any) -> None:
    """A narrow token may not grant permissions it lacks: the server's 403 message shows."""
    server = shared_server
    with client(server) as c:
        r = c.post(
            "/api-tokens",
            json={
                "name": unique("narrow"),
                "permissions": ["OrganizationAPITokenRead", "OrganizationAPITokenModify"],
            },
        )
        assert r.status_code == 200, r.text
        narrow = r.json()
    try:
        sign_in(page, server, narrow["value"])
        page.get_by_role("button", name="New token").click()
        # Permissions this token lacks are marked in the picker.
        expect(page.locator(".perm.not-held")).to_have_count(37)
        name = unique("escalate")
        fill_create_form(page, name, ["AlertModify"])
        with client(server, narrow["value"]) as c:
            expected = c.post("/api-tokens", json={"name": name, "permissions": ["AlertModify"]})
        assert expected.status_code == 403
        page.get_by_role("button", name="Create token").click()
        expect(page.locator("#create-error")).to_have_text(expected.json()["message"])
    finally:
        with client(server) as c:
            c.delete(f"/api-tokens/{narrow['id']}")


def test_rotate_with_grace_period_and_cancel(page: Page, shared_server: Any) -> None:
    server = shared_server
    with client(server) as c:
        r = c.post("/api-tokens", json={"name": unique("grace"), "permissions": ["AlertRead"]})
        assert r.status_code == 200, r.text
        tok = r.json()
    sign_in(page, server)
    rotate = page.get_by_role("button", name=f"Rotate {tok['name']}", exact=True)

    # Cancel leaves the token alone.
    rotate.click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert status_of(server, tok["value"]) == 200
    # So does Escape.
    rotate.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert status_of(server, tok["value"]) == 200

    # An out-of-range grace period is refused in the dialog.
    rotate.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Grace period (seconds)").fill("999999999")
    dialog.get_by_role("button", name="Rotate", exact=True).click()
    expect(dialog).to_contain_text("from 0 to 604800")
    # With a grace period both values work for a while.
    confirm_dialog(page, "Rotate", grace=300)
    expect(page.get_by_role("region", name=f"Token “{tok['name']}” rotated")).to_be_visible()
    new_value = page.get_by_label("Token value", exact=True).input_value()
    assert status_of(server, new_value) == 200
    assert status_of(server, tok["value"]) == 200

    # Delete, but cancel: still there.
    page.get_by_role("button", name=f"Delete {tok['name']}", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    assert status_of(server, new_value) == 200
    with client(server) as c:
        assert c.delete(f"/api-tokens/{tok['id']}").status_code == 204


def test_rotating_and_deleting_the_session_token(page: Page, shared_server: Any) -> None:
    """Rotating the signed-in token switches the session to the new value; deleting it signs
    out."""
    server = shared_server
    with client(server) as c:
        r = c.post(
            "/api-tokens",
            json={
                "name": unique("self"),
                "permissions": ["OrganizationAPITokenRead", "OrganizationAPITokenModify"],
            },
        )
        assert r.status_code == 200, r.text
        tok = r.json()
    sign_in(page, server, tok["value"])
    page.get_by_role("button", name=f"Rotate {tok['name']}", exact=True).click()
    confirm_dialog(page, "Rotate")
    expect(page.get_by_role("region", name=f"Token “{tok['name']}” rotated")).to_be_visible()
    new_value = page.get_by_label("Token value", exact=True).input_value()
    assert new_value
    expect(row_of(page, tok["name"])).to_contain_text("this session")
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") == new_value
    assert status_of(server, tok["value"]) == 401

    page.get_by_role("button", name=f"Delete {tok['name']}", exact=True).click()
    expect(page.get_by_role("dialog")).to_contain_text("you will be signed out")
    confirm_dialog(page, "Delete")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#signin-error")).to_contain_text("was deleted")
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") is None
    assert status_of(server, new_value) == 401


def test_session_survives_reload_but_not_a_new_tab_session(
    browser: Browser, page: Page, shared_server: Any
) -> None:
    server = shared_server
    sign_in(page, server)
    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    # Another browser context (a fresh session) is not signed in.
    other = browser.new_context(viewport=VIEWPORT)
    try:
        p2 = other.new_page()
        open_console(p2, server)
        expect(p2.get_by_role("heading", name="Sign in")).to_be_visible()
        assert p2.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") is None
    finally:
        other.close()


def test_revoked_session_token_signs_out(page: Page, shared_server: Any) -> None:
    server = shared_server
    with client(server) as c:
        r = c.post(
            "/api-tokens",
            json={"name": unique("revoked"), "permissions": ["OrganizationAPITokenRead"]},
        )
        assert r.status_code == 200, r.text
        tok = r.json()
    sign_in(page, server, tok["value"])
    with client(server) as c:
        assert c.delete(f"/api-tokens/{tok['id']}").status_code == 204
    page.get_by_role("button", name="Refresh").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#signin-error")).to_contain_text("Signed out")
    assert page.evaluate(f"sessionStorage.getItem({STORAGE_KEY!r})") is None


def test_load_more_follows_next(page: Page, shared_server: Any) -> None:
    server = shared_server
    page_size = 50
    prefix = unique("page")
    ids = []
    with client(server) as c:
        for i in range(page_size + 3):
            r = c.post(
                "/api-tokens", json={"name": f"{prefix}-{i:02d}", "permissions": ["AlertRead"]}
            )
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
    try:
        total = len(all_tokens(server))
        sign_in(page, server)
        rows = page.locator("#tokens-body tr")
        expect(rows).to_have_count(page_size)
        load_more = page.get_by_role("button", name="Load more")
        while load_more.is_visible():
            shown = rows.count()
            load_more.click()
            expect(rows).not_to_have_count(shown)
        expect(rows).to_have_count(total)
        ids_shown = rows.evaluate_all("rs => rs.map(r => r.dataset.tokenId)")
        assert len(set(ids_shown)) == total  # no page repeated
        assert set(ids) <= set(ids_shown)
    finally:
        with client(server) as c:
            for token_id in ids:
                c.delete(f"/api-tokens/{token_id}")


def test_token_names_are_text_not_html(page: Page, shared_server: Any) -> None:
    server = shared_server
    name = f"<img src=x onerror=\"document.body.dataset.pwned='1'\"> {uuid.uuid4().hex[:6]}"
    with client(server) as c:
        r = c.post("/api-tokens", json={"name": name, "permissions": ["AlertRead"]})
        assert r.status_code == 200, r.text
        tok = r.json()
    try:
        sign_in(page, server)
        expect(page.get_by_text(name, exact=True)).to_be_visible()
        assert page.evaluate("document.body.dataset.pwned") is None
        assert page.locator("#tokens-body img").count() == 0
    finally:
        with client(server) as c:
            c.delete(f"/api-tokens/{tok['id']}")


STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def test_console_works_under_a_strict_content_security_policy(
    context: BrowserContext, page: Page, shared_server: Any
) -> None:
    """No inline script or style, nothing from elsewhere: the service may send a strict CSP."""
    server = shared_server

    def add_csp(route: Route) -> None:
        response = route.fetch()
        headers = {**response.headers, "content-security-policy": STRICT_CSP}
        route.fulfill(response=response, headers=headers)

    context.route(f"{base(server)}/console/**", add_csp)
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation',"
        " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    sign_in(page, server)
    name = unique("csp")
    fill_create_form(page, name, ["AlertRead"], "10.0.0.0/8")
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("region", name=f"Token “{name}” created")).to_be_visible()
    page.get_by_role("button", name="Copy", exact=True).click()
    expect(page.get_by_text("Copied to the clipboard.")).to_be_visible()
    page.get_by_role("button", name=f"Delete {name}", exact=True).click()
    confirm_dialog(page, "Delete")
    expect(row_of(page, name)).to_have_count(0)
    assert page.evaluate("window.__csp") == []
    assert violations == []


def test_extra_permissions_held_by_the_session_can_be_picked(
    page: Page, server_factory: Any, sqlite_database_url: str
) -> None:
    extra = ["billing:read", "reports.export"]
    server = server_factory(
        sqlite_database_url, env={"APITOKENS_EXTRA_PERMISSIONS": ",".join(extra)}
    )
    sign_in(page, server)
    page.get_by_role("button", name="New token").click()
    group = page.locator("#perm-groups fieldset").filter(
        has=page.get_by_text("Other services", exact=True)
    )
    expect(group.locator("input[type=checkbox]")).to_have_count(2)
    expect(page.locator("#perm-groups input[type=checkbox]")).to_have_count(41)

    name = unique("billing")
    fill_create_form(page, name, ["billing:read", "AlertRead"])
    page.get_by_role("button", name="Create token").click()
    expect(page.get_by_role("region", name=f"Token “{name}” created")).to_be_visible()
    created = token_by_name(server, name)
    assert created["permissions"] == ["AlertRead"]
    assert created["servicePermissions"] == ["billing:read"]
    row = row_of(page, name)
    expect(row.get_by_text("billing:read", exact=True)).to_be_visible()


def test_upstream_only_sessions_see_no_other_services_group(page: Page, shared_server: Any) -> None:
    sign_in(page, shared_server)
    page.get_by_role("button", name="New token").click()
    expect(page.locator("#perm-groups input[type=checkbox]")).to_have_count(39)
    expect(page.get_by_text("Other services", exact=True)).to_have_count(0)
