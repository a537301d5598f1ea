"""What the client does without a server: request shapes, error mapping, retry policy.

These use ``httpx.MockTransport`` to produce what a real server cannot be made to produce on
demand (a 500, a 429, a dropped connection); the behaviour against the real server is in
the other files of this folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from apitokens.client import (
    APIToken,
    APITokensError,
    AsyncClient,
    BadRequest,
    Client,
    ConnectionFailed,
    Forbidden,
    InvalidResponse,
    NotFound,
    RateLimited,
    ServerError,
    Unauthorized,
)
from apitokens.client.calls import UNSET

SECRET = "apitk_offline_secret_value"
TOKEN_JSON = {
    "id": "tok-1",
    "name": "ci",
    "permissions": ["OrganizationAPITokenRead"],
    "allowedCIDRBlocks": ["10.0.0.0/8"],
    "createdAt": "2024-05-01T12:00:00.123Z",
    "createdBy": {"id": "admin", "type": "system"},
    "updatedAt": "2024-05-01T12:00:00.123Z",
    "updatedBy": {"id": "admin", "type": "system"},
    "rotatedAt": None,
    "lastUsedAt": None,
    "expiresAt": None,
    "someFutureField": 1,
}

Handler = Callable[[httpx.Request], httpx.Response]


def make_client(handler: Handler, retries: int = 2) -> Client:
    return Client(
        "http://api.test",
        SECRET,
        retries=retries,
        transport=httpx.MockTransport(handler),
        backoff=0,
    )


def recording(responses: list[httpx.Response], seen: list[httpx.Request]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return responses.pop(0)

    return handle


def test_request_carries_key_header_and_parses_token() -> None:
    seen: list[httpx.Request] = []
    with make_client(recording([httpx.Response(200, json=TOKEN_JSON)], seen)) as client:
        token = client.get("self")
    assert seen[0].method == "GET"
    assert seen[0].url == "http://api.test/api-tokens/self"
    assert seen[0].headers["X-API-Key"] == SECRET
    assert token == APIToken(
        id="tok-1",
        name="ci",
        permissions=("OrganizationAPITokenRead",),
        allowed_cidr_blocks=("10.0.0.0/8",),
        created_at=datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
        created_by=token.created_by,
        updated_at=datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
        updated_by=token.updated_by,
    )
    assert token.created_by is not None
    assert (token.created_by.id, token.created_by.type) == ("admin", "system")
    assert token.value is None
    assert token.last_used_ips is None


def test_to_dict_round_trips_the_wire_format() -> None:
    raw = {**TOKEN_JSON, "lastUsedIPs": ["10.1.2.3"], "value": SECRET}
    del raw["someFutureField"]
    assert APIToken.from_dict(raw).to_dict() == raw


def test_ids_are_escaped_in_paths() -> None:
    seen: list[httpx.Request] = []
    with make_client(recording([httpx.Response(204)], seen)) as client:
        client.delete("a/b c")
    assert seen[0].url.raw_path == b"/api-tokens/a%2Fb%20c"


def test_create_body_and_expiry_format() -> None:
    seen: list[httpx.Request] = []
    reply = httpx.Response(200, json={**TOKEN_JSON, "value": SECRET})
    expiry = datetime(2030, 1, 2, 4, 4, 5, 678999, tzinfo=timezone(timedelta(hours=1)))
    with make_client(recording([reply], seen)) as client:
        created = client.create("ci", ["RuleRead"], ["10.0.0.0/8"], expires_at=expiry)
    assert json.loads(seen[0].content) == {
        "name": "ci",
        "permissions": ["RuleRead"],
        "allowedCIDRBlocks": ["10.0.0.0/8"],
        "expiresAt": "2030-01-02T03:04:05.678Z",
    }
    assert created.value == SECRET


def test_create_without_optional_fields_omits_them() -> None:
    seen: list[httpx.Request] = []
    with make_client(recording([httpx.Response(200, json=TOKEN_JSON)], seen)) as client:
        client.create("ci", [])
    assert json.loads(seen[0].content) == {"name": "ci", "permissions": []}


def test_update_omits_blocks_and_expiry_unless_given() -> None:
    seen: list[httpx.Request] = []
    replies = [httpx.Response(200, json=TOKEN_JSON) for _ in range(2)]
    with make_client(recording(replies, seen)) as client:
        client.update("tok-1", "renamed", ["RuleRead"])
        client.update("tok-1", "renamed", ["RuleRead"], allowed_cidr_blocks=[], expires_at=None)
    assert seen[0].method == "POST"
    assert seen[0].url == "http://api.test/api-tokens/tok-1"
    assert json.loads(seen[0].content) == {"name": "renamed", "permissions": ["RuleRead"]}
    assert json.loads(seen[1].content) == {
        "name": "renamed",
        "permissions": ["RuleRead"],
        "allowedCIDRBlocks": [],
        "expiresAt": None,
    }


def test_rotate_sends_grace_period_as_query() -> None:
    seen: list[httpx.Request] = []
    replies = [httpx.Response(200, json=TOKEN_JSON) for _ in range(2)]
    with make_client(recording(replies, seen)) as client:
        client.rotate("self")
        client.rotate("self", grace_period_seconds=60)
    assert str(seen[0].url) == "http://api.test/api-tokens/self/rotate"
    assert str(seen[1].url) == "http://api.test/api-tokens/self/rotate?gracePeriodSeconds=60"
    assert seen[1].content == b""


def test_list_sends_limit_and_cursor() -> None:
    seen: list[httpx.Request] = []
    page = {"results": [TOKEN_JSON], "next": "c2"}
    with make_client(recording([httpx.Response(200, json=page)], seen)) as client:
        result = client.list(limit=3, cursor="c1")
    assert seen[0].url.params == httpx.QueryParams({"limit": "3", "cursor": "c1"})
    assert [token.id for token in result.results] == ["tok-1"]
    assert result.next == "c2"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BadRequest),
        (413, BadRequest),
        (422, BadRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (429, RateLimited),
        (500, ServerError),
        (503, ServerError),
        (409, APITokensError),
    ],
)
def test_error_statuses_map_to_types(status: int, error_type: type[APITokensError]) -> None:
    reply = httpx.Response(status, json={"message": f"reason {status}"})
    with (
        make_client(recording([reply], []), retries=0) as client,
        pytest.raises(error_type) as info,
    ):
        client.get("x")
    assert type(info.value) is error_type
    assert info.value.status_code == status
    assert info.value.message == f"reason {status}"
    assert str(info.value) == f"reason {status} (HTTP {status})"


def test_rate_limited_carries_retry_after() -> None:
    reply = httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "7"})
    client = make_client(recording([reply], []), retries=0)
    with client, pytest.raises(RateLimited) as info:
        client.list()
    assert info.value.retry_after == 7.0


def test_error_without_json_body_uses_reason_phrase() -> None:
    reply = httpx.Response(502, text="<html>bad gateway</html>")
    with make_client(recording([reply], [])) as client, pytest.raises(ServerError) as info:
        client.list()
    assert info.value.message == "Bad Gateway"


def test_malformed_success_body_is_invalid_response() -> None:
    replies = [httpx.Response(200, text="not json"), httpx.Response(200, json={"id": 1})]
    with make_client(recording(replies, [])) as client:
        with pytest.raises(InvalidResponse):
            client.get("x")
        with pytest.raises(InvalidResponse):
            client.get("x")


def failing_then(reply: httpx.Response | None, failures: int, seen: list[str]) -> Handler:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if len(seen) <= failures or reply is None:
            raise httpx.ConnectError("connection refused", request=request)
        return reply

    return handle


def test_idempotent_calls_are_retried_after_connection_errors() -> None:
    seen: list[str] = []
    handler = failing_then(httpx.Response(200, json=TOKEN_JSON), 2, seen)
    with make_client(handler, retries=2) as client:
        assert client.get("tok-1").id == "tok-1"
    assert seen == ["GET", "GET", "GET"]


def test_delete_is_retried_and_gives_up_with_connection_failed() -> None:
    seen: list[str] = []
    client = make_client(failing_then(None, 0, seen), retries=2)
    with client, pytest.raises(ConnectionFailed) as info:
        client.delete("tok-1")
    assert seen == ["DELETE"] * 3
    assert info.value.status_code is None
    assert SECRET not in str(info.value)


@pytest.mark.parametrize("operation", ["create", "update", "rotate"])
def test_mutations_are_never_retried(operation: str) -> None:
    seen: list[str] = []
    calls: dict[str, Callable[[Client], object]] = {
        "create": lambda c: c.create("ci", ["RuleRead"]),
        "update": lambda c: c.update("tok-1", "ci", ["RuleRead"]),
        "rotate": lambda c: c.rotate("tok-1"),
    }
    client = make_client(failing_then(None, 0, seen), retries=5)
    with client, pytest.raises(ConnectionFailed):
        calls[operation](client)
    assert seen == ["POST"]


def test_secrets_never_show_in_repr() -> None:
    client = make_client(recording([], []))
    assert repr(client) == "Client(base_url='http://api.test')"
    assert SECRET not in repr(vars(client))
    client.close()
    token = APIToken.from_dict({**TOKEN_JSON, "value": SECRET})
    assert SECRET not in repr(token)
    assert "value=<hidden>" in repr(token)


@pytest.mark.parametrize("bad", ["", "has space", "line\nbreak", "é"])
def test_malformed_token_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(ValueError) as info:
        Client("http://api.test", bad)
    assert str(info.value) == "token must be a non-empty string of printable ASCII characters"


def test_naive_expiry_is_refused() -> None:
    with make_client(recording([], [])) as client, pytest.raises(ValueError):
        client.create("ci", [], expires_at=datetime(2030, 1, 1))


async def test_async_client_follows_pages_and_maps_errors() -> None:
    pages = {
        None: {"results": [TOKEN_JSON], "next": "c2"},
        "c2": {"results": [{**TOKEN_JSON, "id": "tok-2"}]},
    }

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "DELETE":
            return httpx.Response(404, json={"message": "no such token"})
        return httpx.Response(200, json=pages[request.url.params.get("cursor")])

    transport = httpx.MockTransport(handle)
    async with AsyncClient("http://api.test", SECRET, transport=transport) as client:
        assert repr(client) == "AsyncClient(base_url='http://api.test')"
        assert [token.id async for token in client.iter_tokens(page_size=1)] == ["tok-1", "tok-2"]
        with pytest.raises(NotFound) as info:
            await client.delete("gone")
    assert (info.value.status_code, info.value.message) == (404, "no such token")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date gone by: retry now
        ("Wed, 21 Oct 2015 07:28:00 -0000", 0.0),  # no zone given: read as UTC
        ("soon", None),
        ("-5", 0.0),
    ],
)
def test_retry_after_as_an_http_date_or_unreadable(header: str, expected: float | None) -> None:
    reply = httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": header})
    client = make_client(recording([reply], []), retries=0)
    with client, pytest.raises(RateLimited) as info:
        client.list()
    assert info.value.retry_after == expected


def test_retry_after_as_a_future_http_date_counts_the_seconds_to_it() -> None:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
    header = moment.strftime("%a, %d %b %Y %H:%M:%S GMT")
    reply = httpx.Response(503, json={"message": "busy"}, headers={"Retry-After": header})
    before = datetime.now(UTC)
    with (
        make_client(recording([reply], []), retries=0) as client,
        pytest.raises(ServerError) as info,
    ):
        client.delete("tok-1")
    after = datetime.now(UTC)
    assert info.value.retry_after is not None
    assert (moment - after).total_seconds() <= info.value.retry_after
    assert info.value.retry_after <= (moment - before).total_seconds()


TOKEN_TYPE_ERROR = "malformed token in response: TypeError"
BAD_EVENT = "malformed audit event in response"
AUDIT_JSON = {
    "id": "ev-1",
    "action": "token.create",
    "tokenId": "tok-1",
    "actor": {"id": "admin", "type": "api-token"},
    "clientIP": "127.0.0.1",
    "at": "2024-05-01T12:00:00.123Z",
    "detail": {"name": "ci"},
}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"results": "nope"}, "malformed listing: 'results' is not a list"),
        ({"results": [{**TOKEN_JSON, "permissions": "RuleRead"}]}, TOKEN_TYPE_ERROR),
        ({"results": [{**TOKEN_JSON, "value": 5}]}, TOKEN_TYPE_ERROR),
        ([TOKEN_JSON], "response is not a JSON object"),
    ],
)
def test_a_malformed_listing_is_invalid_response(body: object, message: str) -> None:
    client = make_client(recording([httpx.Response(200, json=body)], []), retries=0)
    with client, pytest.raises(InvalidResponse) as info:
        client.list()
    assert info.value.message == message


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"results": {}}, "malformed listing: 'results' is not a list"),
        ({"results": [{**AUDIT_JSON, "at": "yesterday"}]}, f"{BAD_EVENT}: ValueError"),
        ({"results": [{**AUDIT_JSON, "tokenId": 7}]}, f"{BAD_EVENT}: TypeError"),
        ({"results": [{k: v for k, v in AUDIT_JSON.items() if k != "action"}]},
         f"{BAD_EVENT}: KeyError"),
    ],
)  # fmt: skip
def test_a_malformed_audit_page_is_invalid_response(body: object, message: str) -> None:
    client = make_client(recording([httpx.Response(200, json=body)], []), retries=0)
    with client, pytest.raises(InvalidResponse) as info:
        client.audit_events()
    assert info.value.message == message


def test_an_audit_page_and_a_verification_read_from_the_wire() -> None:
    page = {"results": [AUDIT_JSON, {**AUDIT_JSON, "id": "ev-2", "detail": "text"}], "next": "c"}
    seen: list[httpx.Request] = []
    verified = httpx.Response(
        200, headers={"X-Token-Id": "tok-1", "X-Token-Name": "c%20i", "X-Token-Permissions": ""}
    )
    replies = [httpx.Response(200, json=page), verified, httpx.Response(200)]
    with make_client(recording(replies, seen)) as client:
        events = client.audit_events(10, "c0", token_id="tok-1", action="token.create")
        assert [event.to_dict() for event in events.results] == [
            AUDIT_JSON,
            {**AUDIT_JSON, "id": "ev-2", "detail": None},  # a detail that is no object: none
        ]
        assert events.next == "c"
        check = client.verify()
        assert (check.token_id, check.name, check.permissions) == ("tok-1", "c i", ())
        with pytest.raises(InvalidResponse) as info:
            client.verify(["RuleRead"])
    assert info.value.message == "verification answer without X-Token-Id"
    assert [str(request.url) for request in seen] == [
        "http://api.test/audit-events?limit=10&cursor=c0&tokenId=tok-1&action=token.create",
        "http://api.test/verify",
        "http://api.test/verify?permission=RuleRead",
    ]


def test_one_string_where_a_list_is_expected_is_a_type_error() -> None:
    with make_client(recording([], [])) as client:
        with pytest.raises(TypeError, match="permissions takes a list, not one string"):
            client.verify("RuleRead")
        with pytest.raises(TypeError, match="permissions and allowed_cidr_blocks take a list"):
            client.create("ci", "RuleRead")
        with pytest.raises(TypeError, match="permissions and allowed_cidr_blocks take a list"):
            client.create("ci", [], "10.0.0.0/8")
        with pytest.raises(TypeError, match="service_permissions takes a list, not one string"):
            client.create("ci", [], service_permissions="Extra")
        with pytest.raises(ValueError, match="token id must not be empty"):
            client.get("")
    assert repr(UNSET) == "UNSET"


def test_a_token_with_last_used_ips_round_trips() -> None:
    raw = {**TOKEN_JSON, "lastUsedIPs": ["10.0.0.1"], "servicePermissions": ["Extra"]}
    del raw["someFutureField"]
    assert APIToken.from_dict(raw).to_dict() == raw


async def test_async_client_audit_verify_leak_and_connection_failures() -> None:
    seen: list[httpx.Request] = []
    waits: list[float] = []
    page_one = {"results": [AUDIT_JSON], "next": "c2"}
    page_two = {"results": [{**AUDIT_JSON, "id": "ev-2"}]}
    verified = {"X-Token-Id": "tok-1", "X-Token-Name": "ci", "X-Token-Permissions": "RuleRead"}
    answers: list[httpx.Response | None] = [
        httpx.Response(200, json=page_one),
        None,  # the connection drops: an idempotent GET is retried after the backoff
        httpx.Response(200, json=page_two),
        httpx.Response(200, headers=verified),
        httpx.Response(204),
        None,
        None,
    ]

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if answer is None:
            raise httpx.ConnectError("connection refused", request=request)
        return answer

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    transport = httpx.MockTransport(handle)
    async with AsyncClient(
        "http://api.test", SECRET, transport=transport, retries=1, backoff=0.25, sleep=sleep
    ) as client:
        events = [e.id async for e in client.iter_audit_events(page_size=1, action="x")]
        assert events == ["ev-1", "ev-2"]
        check = await client.verify(["RuleRead"])
        assert (check.token_id, check.name, check.permissions) == ("tok-1", "ci", ("RuleRead",))
        assert await client.report_leak("apitk_leaked") is None
        with pytest.raises(ConnectionFailed) as info:
            await client.delete("tok-1")
    assert waits == [0.25, 0.25]
    assert [(r.method, r.url.path) for r in seen] == [
        ("GET", "/audit-events"), ("GET", "/audit-events"), ("GET", "/audit-events"),
        ("GET", "/verify"), ("POST", "/leaked-values"), ("DELETE", "/api-tokens/tok-1"),
        ("DELETE", "/api-tokens/tok-1"),
    ]  # fmt: skip
    assert seen[2].url.params["cursor"] == "c2"
    assert "X-API-Key" not in seen[4].headers  # a report is anonymous
    assert json.loads(seen[4].content) == {"value": "apitk_leaked"}
    assert info.value.status_code is None
    assert SECRET not in str(info.value)


async def test_async_client_of_ones_own_is_left_open() -> None:
    own = httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=TOKEN_JSON))
    )
    async with AsyncClient("http://api.test", SECRET, http_client=own) as client:
        assert (await client.get("tok-1")).id == "tok-1"
    assert not own.is_closed
    with pytest.raises(ValueError, match="give transport or http_client, not both"):
        AsyncClient("http://x", SECRET, transport=httpx.MockTransport(lambda r: r), http_client=own)
    await own.aclose()


def test_a_name_the_package_does_not_have_is_an_attribute_error() -> None:
    import apitokens.client

    assert apitokens.client.AsyncClient is AsyncClient  # made on first use
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = apitokens.client.NoSuchThing  # type: ignore[attr-defined]
