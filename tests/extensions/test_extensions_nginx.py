"""A real nginx with the documented configuration in front of a tiny upstream: good values
pass with the token's identity; everything else is stopped before the upstream."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from extension_helpers import (
    READ,
    TRUSTED_LOOPBACK,
    create_token,
    extension_env,
    from_now,
    iso,
    sleep_until,
    wait_for,
)
from nginx_proxy import TEMPLATE, EchoUpstream, Nginx, nginx_executable, running_nginx

from support.processes import RunningServer
from support.protocols import ApiClientFactory, ServerFactory

pytestmark = pytest.mark.nginx

REQUIRE_NGINX_ENV = "APITOKENS_REQUIRE_NGINX"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "nginx.md"
FAILURE_LIMIT = 4  # the stopped-values test makes three failures from one address


@dataclass
class Proxied:
    apitokens: RunningServer
    admin: httpx.Client
    nginx: Nginx
    upstream: EchoUpstream

    def client(self, local_address: str = "127.0.0.1") -> httpx.Client:
        """A client of nginx whose connections come from ``local_address`` (127/8)."""
        transport = httpx.HTTPTransport(local_address=local_address)
        return httpx.Client(base_url=self.nginx.url, transport=transport, timeout=10)


def _require_nginx() -> None:
    if nginx_executable() is not None:
        return
    reason = "nginx (Debian package nginx) is not installed; .ci/run installs it"
    if os.environ.get(REQUIRE_NGINX_ENV, "").lower() in {"1", "true", "yes", "on"}:
        pytest.fail(f"{reason}, and {REQUIRE_NGINX_ENV}=1", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def proxied(
    server_factory: ServerFactory,
    sqlite_database_url: str,
    api: ApiClientFactory,
    tmp_path: Path,
) -> Iterator[Proxied]:
    """apitokens (trusting 127.0.0.1, i.e. nginx), the echo upstream, and nginx."""
    _require_nginx()
    env = {**extension_env(), "APITOKENS_AUTH_FAILURE_LIMIT": str(FAILURE_LIMIT)}
    server = server_factory(sqlite_database_url, env=env, args=TRUSTED_LOOPBACK)
    address = f"{server.host}:{server.port}"
    with (
        EchoUpstream() as upstream,
        running_nginx(tmp_path / "nginx", address, upstream.address) as nginx,
    ):
        yield Proxied(server, api(server, server.admin), nginx, upstream)


def _refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["message"]


def test_the_docs_show_the_template_the_tests_use() -> None:
    blocks = re.findall(r"```nginx\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert TEMPLATE.read_text(encoding="utf-8") in blocks


def test_a_good_value_passes_with_the_identity_headers(proxied: Proxied) -> None:
    token = create_token(proxied.admin, "reporter", ("reports:read", READ))
    with proxied.client() as client:
        forged = {"X-Token-Id": "forged", "X-Token-Permissions": "everything"}
        response = client.post(
            "/reports/q1?x=1",
            headers={"X-API-Key": token["value"], **forged},
            json={"hello": "upstream"},
        )
        bearer = client.get("/any", headers={"Authorization": f"Bearer {token['value']}"})
    assert response.status_code == 200, response.text
    echoed = response.json()
    assert (echoed["method"], echoed["path"]) == ("POST", "/reports/q1?x=1")
    assert echoed["body"] == '{"hello":"upstream"}'
    headers = echoed["headers"]
    assert headers["x-token-id"] == [token["id"]]
    assert headers["x-token-name"] == ["reporter"]
    assert headers["x-token-permissions"] == [f"{READ},reports:read"]
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert "x-api-key" not in headers  # the secret never reaches the upstream
    assert bearer.status_code == 200
    assert bearer.json()["headers"]["x-token-id"] == [token["id"]]
    assert "authorization" not in bearer.json()["headers"]


def test_missing_bad_expired_and_unpermitted_values_are_stopped(proxied: Proxied) -> None:
    expires = from_now(seconds=3)
    expiring = create_token(proxied.admin, "expiring", expiresAt=iso(expires))
    narrow = create_token(proxied.admin, "narrow", ("AlertRead",))
    with proxied.client("127.0.0.5") as client:
        _refused(client.get("/any"), 401)
        _refused(client.get("/any", headers={"X-API-Key": "apitk_not-a-value"}), 401)
        assert client.get("/any", headers={"X-API-Key": expiring["value"]}).status_code == 200
        sleep_until(expires)
        _refused(client.get("/any", headers={"X-API-Key": expiring["value"]}), 401)
        seen = proxied.upstream.seen
        _refused(client.get("/reports/q1", headers={"X-API-Key": narrow["value"]}), 403)
        assert client.get("/other", headers={"X-API-Key": narrow["value"]}).status_code == 200
    assert proxied.upstream.seen == [*seen, "GET /other"]
    assert [line.split()[1] for line in seen] == ["/any"]


def test_the_source_address_is_the_real_client(proxied: Proxied) -> None:
    fenced = create_token(proxied.admin, "fenced", allowedCIDRBlocks=["127.0.0.2/32"])
    value = {"X-API-Key": fenced["value"]}
    with proxied.client("127.0.0.1") as outside:
        _refused(outside.get("/any", headers=value), 403)
        # nginx replaces X-Forwarded-For: a client cannot claim another address.
        spoof = {**value, "X-Forwarded-For": "127.0.0.2"}
        _refused(outside.get("/any", headers=spoof), 403)
    with proxied.client("127.0.0.2") as inside:
        assert inside.get("/any", headers=value).status_code == 200
    wait_for(
        lambda: (
            proxied.admin.get(f"/api-tokens/{fenced['id']}").json()["lastUsedIPs"] == ["127.0.0.2"]
        ),
        what="lastUsedIPs showing the client behind nginx",
    )


def test_rate_limited_and_unavailable_fail_closed(proxied: Proxied) -> None:
    good = {"X-API-Key": proxied.apitokens.admin}
    with proxied.client("127.0.0.9") as client:
        for _ in range(FAILURE_LIMIT):
            _refused(client.get("/any", headers={"X-API-Key": "junk"}), 401)
        limited = client.get("/any", headers=good)
        _refused(limited, 429)
        assert int(limited.headers["Retry-After"]) >= 1
    with proxied.client("127.0.0.10") as client:
        assert client.get("/any", headers=good).status_code == 200
        proxied.apitokens.stop()
        _refused(client.get("/any", headers=good), 500)
    assert "auth request unexpected status" in proxied.nginx.error_log() or (
        "connect() failed" in proxied.nginx.error_log()
    )
