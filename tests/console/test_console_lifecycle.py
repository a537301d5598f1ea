"""The console's webhooks section and per-token usage chart, in a real headless Chromium."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.protocols import ServerFactory

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    if os.environ.get("APITOKENS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{CHROMIUM} is missing and APITOKENS_REQUIRE_BROWSER=1", pytrace=False)
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture
def page() -> Iterator[Page]:
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless=new", "--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 900}, timezone_id="UTC")
        context.set_default_timeout(15_000)
        tab = context.new_page()
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        yield tab
        browser.close()
    assert errors == [], errors


def test_usage_chart_and_webhooks(
    page: Page, server_factory: ServerFactory, sqlite_database_url: str, tmp_path: Path
) -> None:
    server = server_factory(sqlite_database_url, env={"APITOKENS_WEBHOOK_ALLOW_PRIVATE": "true"})
    admin = httpx.Client(base_url=server.url, headers={"X-API-Key": server.admin or ""})
    used = admin.post("/api-tokens", json={"name": "used-token", "permissions": []}).json()
    for _ in range(3):
        httpx.get(f"{server.url}/api-tokens/self", headers={"X-API-Key": used["value"]})

    page.goto(f"{server.url}/console/")
    page.get_by_label("API token", exact=True).fill(server.admin or "")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Webhooks")).to_be_visible()

    page.get_by_role("button", name="Usage of used-token").click()
    panel = page.locator("#usage-panel")
    expect(panel.get_by_role("heading", name="Usage of used-token")).to_be_visible()
    bars = panel.locator(".usage-bar")
    expect(bars).to_have_count(30)
    expect(bars.last).to_have_attribute("data-requests", "3")
    expect(panel.locator("#usage-summary")).to_have_text(
        "3 successful requests in the last 30 days (UTC)."
    )
    page.screenshot(path=str(tmp_path / "usage.png"), full_page=True)

    page.get_by_label("URL", exact=True).fill("http://127.0.0.1:9/hook")
    page.get_by_label("Description (optional)").fill("ops pager")
    page.get_by_role("button", name="Add webhook").click()
    secret = page.locator("#webhook-secret")
    expect(secret).to_have_value(re.compile(r"^whsec_[A-Za-z0-9+/=]{40,}$"))
    row = page.locator("#webhooks-body tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("http://127.0.0.1:9/hook")
    expect(row).to_contain_text("all events")
    expect(row).to_contain_text("ops pager")
    page.get_by_role("button", name="I have saved it, hide the secret").click()
    expect(secret).to_be_hidden()

    admin.post("/api-tokens", json={"name": "after-hook", "permissions": []})
    page.get_by_role("button", name="Deliveries of http://127.0.0.1:9/hook").click()
    deliveries = page.locator("#deliveries-body tr")
    expect(deliveries).to_have_count(1)
    expect(deliveries).to_contain_text("api_token.created")
    expect(deliveries).to_contain_text("pending")  # nothing listens on port 9
    page.screenshot(path=str(tmp_path / "webhooks.png"), full_page=True)

    bad = page.get_by_label("URL", exact=True)
    bad.fill("ftp://example.com/x")
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#webhook-error")).to_have_text(
        "url: must be an absolute http:// or https:// URL"
    )

    page.get_by_role("button", name="Delete webhook http://127.0.0.1:9/hook").click()
    expect(page.locator("#webhooks-body tr")).to_have_count(0)
    expect(page.locator("#webhooks-empty")).to_be_visible()
    assert admin.get("/webhooks").json() == {"results": []}
    admin.close()
