"""An in-process app for webhook and usage tests, with a clock that moves only when told."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.exceptions import StarletteDeprecationWarning

from apitokens.wiring import Services as Runtime

with warnings.catch_warnings():
    # Starlette would rather its TestClient ran on httpx2; on httpx it works the same.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient


class ManualClock:
    """Starts at the real time (signatures carry real timestamps) and moves when told."""

    def __init__(self) -> None:
        now = datetime.now(UTC)
        self.moment = now.replace(microsecond=now.microsecond // 1000 * 1000)

    def now(self) -> datetime:
        return self.moment

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


@dataclass
class App:
    client: TestClient
    runtime: Runtime
    clock: ManualClock
    admin: str

    def headers(self, value: str | None = None) -> dict[str, str]:
        return {"X-API-Key": value or self.admin}

    def post(self, path: str, body: Any = None, value: str | None = None) -> Any:
        return self.client.post(path, json=body, headers=self.headers(value))

    def get(self, path: str, value: str | None = None, **params: Any) -> Any:
        return self.client.get(path, params=params, headers=self.headers(value))

    def delete(self, path: str, value: str | None = None) -> Any:
        return self.client.delete(path, headers=self.headers(value))

    def token(self, name: str, permissions: list[str], **extra: Any) -> dict[str, Any]:
        created = self.post("/api-tokens", {"name": name, "permissions": permissions, **extra})
        assert created.status_code == 200, created.text
        body: dict[str, Any] = created.json()
        return body

    def hook(self, url: str, **extra: Any) -> dict[str, Any]:
        created = self.post("/webhooks", {"url": url, **extra})
        assert created.status_code == 200, created.text
        body: dict[str, Any] = created.json()
        return body

    def send_all(self) -> int:
        """Run the sender until nothing is due now; the number of attempts made."""
        total = 0
        while sent := self.runtime.lifecycle.sender.run_once():
            total += sent
        return total


AppFactory = Callable[..., App]
