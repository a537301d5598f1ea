"""A client generated from the upstream contract works against this service unchanged,
whether or not the operator added permissions for other services (issue 13).

The client is what openapi-python-client makes of ``upstream-openapi.json``: its models
parse ``permissions`` into the upstream enum, so one extra name in any answer would make it
raise. Every operation is run, and each answer is checked as the client parsed it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from upstream_support import EXTRA, running

from apitokens.domain.permissions import UPSTREAM_PERMISSIONS

READ = "OrganizationAPITokenRead"
MODIFY = "OrganizationAPITokenModify"


def names(token: Any) -> list[str]:
    """The permissions of a parsed APIToken, as strings (each one parsed into the enum)."""
    return [item.value for item in token.permissions]


def modify(package: SimpleNamespace, name: str, permissions: list[str], **extra: Any) -> Any:
    """A ModifyAPIToken; ``extra`` fields travel as additional properties (the extension)."""
    models = package.models
    body = models.ModifyAPIToken(
        name=name, permissions=[models.ModifyAPITokenPermissionsItem(p) for p in permissions]
    )
    for key, value in extra.items():
        body[key] = value
    return body


@pytest.mark.parametrize("extra", [(), EXTRA], ids=["upstream-only", "extra-permissions"])
async def test_every_operation_parses_through_the_generated_client(
    upstream_client: SimpleNamespace, url: str, extra: tuple[str, ...]
) -> None:
    api = upstream_client
    APIToken, ListResp, Error = api.models.APIToken, api.models.ListResp, api.models.Error
    async with running(url, extra) as server:
        admin = server.generated(api, server.admin)

        # get self: the bootstrap token holds every name; permissions shows the upstream ones.
        me = await api.get.asyncio(id="self", client=admin)
        assert isinstance(me, APIToken)
        assert names(me) == list(UPSTREAM_PERMISSIONS)
        assert me.additional_properties["servicePermissions"] == list(extra)

        # create (with the extension's field as an additional property when there are extras)
        service = {"servicePermissions": [extra[0]]} if extra else {}
        created = await api.create.asyncio(
            client=admin, body=modify(api, "ci", [READ, "AlertRead", READ], **service)
        )
        assert isinstance(created, APIToken)
        assert (created.name, names(created)) == ("ci", ["AlertRead", READ])
        assert created.additional_properties["servicePermissions"] == list(extra[:1])
        assert isinstance(created.value, str)
        ci = server.generated(api, created.value)
        ci_self = await api.get.asyncio(id="self", client=ci)
        assert isinstance(ci_self, APIToken)
        assert ci_self.id == created.id
        assert not isinstance(ci_self.value, str)  # shown once: absent (Unset)

        # list: every token parses, permissions upstream names only
        page = await api.list_.asyncio(client=admin)
        assert isinstance(page, ListResp)
        assert [token.id for token in page.results] == [created.id, me.id]
        assert [names(token) for token in page.results] == [
            ["AlertRead", READ],
            list(UPSTREAM_PERMISSIONS),
        ]
        assert not any(isinstance(token.value, str) for token in page.results)

        # get by id
        got = await api.get.asyncio(id=created.id, client=admin)
        assert isinstance(got, APIToken)
        assert (got.id, got.name, names(got)) == (created.id, "ci", ["AlertRead", READ])

        # update, as an upstream client sends it (no servicePermissions): they are kept
        updated = await api.update.asyncio(
            id=created.id, client=admin, body=modify(api, "ci-2", [READ, MODIFY])
        )
        assert isinstance(updated, APIToken)
        assert (updated.name, names(updated)) == ("ci-2", [MODIFY, READ])
        assert updated.additional_properties["servicePermissions"] == list(extra[:1])

        # rotate by id: the returned value works, the old one does not
        rotated = await api.rotate.asyncio(id=created.id, client=admin)
        assert isinstance(rotated, APIToken)
        assert names(rotated) == [MODIFY, READ]
        assert isinstance(rotated.value, str)
        assert rotated.value != created.value
        stale = await api.get.asyncio_detailed(id="self", client=ci)
        assert stale.status_code == 401
        ci = server.generated(api, rotated.value)

        # rotate self, through the token that holds a service permission: the client returns
        # the new value (the lock-out of the issue), and it is the one that works
        again = await api.rotate.asyncio(id="self", client=ci)
        assert isinstance(again, APIToken)
        assert again.id == created.id
        assert isinstance(again.value, str)
        assert again.value != rotated.value
        fresh = server.generated(api, again.value)
        assert (await api.get.asyncio(id="self", client=fresh)).id == created.id
        assert (await api.get.asyncio_detailed(id="self", client=ci)).status_code == 401

        # rotate self by the bootstrap token itself
        admin_rotated = await api.rotate.asyncio(id="self", client=admin)
        assert isinstance(admin_rotated, APIToken)
        assert names(admin_rotated) == list(UPSTREAM_PERMISSIONS)
        admin = server.generated(api, admin_rotated.value)

        # errors parse as Error
        missing = await api.get.asyncio(id="no-such-token", client=admin)
        assert isinstance(missing, Error)
        assert missing.message == "no API token with that id"

        # delete, then the token is gone
        deleted = await api.delete.asyncio_detailed(id=created.id, client=admin)
        assert deleted.status_code == 204
        assert deleted.content == b""
        gone = await api.get.asyncio(id=created.id, client=admin)
        assert isinstance(gone, Error)
        assert gone.message == "no API token with that id"
        assert (await api.get.asyncio_detailed(id="self", client=fresh)).status_code == 401
        page = await api.list_.asyncio(client=admin)
        assert [token.id for token in page.results] == [me.id]
