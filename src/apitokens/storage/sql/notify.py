"""Cross-instance change notifications over PostgreSQL ``LISTEN``/``NOTIFY``.

Every unit of work that records a change sends a notification on ``CHANGES_CHANNEL``
(``SqlChanges.record``), carrying the change's feed position. PostgreSQL delivers it to
every listening session once that transaction has committed, and never if it rolls
back, so a listener that then reads the feed cannot read the old row again afterwards.

``ChangeListener`` keeps one dedicated connection per instance (outside the pool, in
autocommit mode) listening in a background thread. While that connection is down nothing
can be heard: ``on_lost`` is called so the instance stops trusting its cache, and the
listener reconnects with capped exponential backoff. Notifications sent meanwhile are
gone, so ``on_change(None)`` is also called each time listening (re)starts. The feed poll
stays the backstop for what a silently dead connection would miss.
"""

from __future__ import annotations

import logging
import os
import select
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("apitokens.changes")

CHANGES_CHANNEL = "apitokens_changes"
APPLICATION_NAME = "apitokens-listener"

CONNECT_TIMEOUT_SECONDS = 3
FIRST_BACKOFF_SECONDS = 0.1
MAX_BACKOFF_SECONDS = 2.0
STOP_CHECK_SECONDS = 0.5
"""How long one wait for notifications lasts before the stop flag is looked at again (a
stop also wakes the wait at once, through a pipe)."""


def libpq_conninfo(url: str) -> str:
    """The libpq URI of a SQLAlchemy ``postgresql+<driver>://`` URL (password kept)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChangeListener:
    """Calls ``on_change(position)`` for each change notification, from a background thread.

    ``on_change`` runs once per notification (with the position it carries) and once, with
    None, each time listening (re)starts;
    ``on_lost`` runs when an established connection breaks. Neither may block for long.
    """

    def __init__(
        self,
        url: str,
        on_change: Callable[[int | None], None],
        on_lost: Callable[[], None],
    ) -> None:
        self._conninfo = libpq_conninfo(url)
        self._on_change = on_change
        self._on_lost = on_lost
        self._stopping = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="apitokens-change-listener", daemon=True
        )
        self._wake_lock = threading.Lock()
        self._wake: tuple[int, int] | None = None  # a pipe: stop() writes, the wait wakes

    @property
    def listening(self) -> bool:
        """True while the connection is up and subscribed to the channel."""
        return self._listening.is_set()

    def start(self) -> None:
        self._wake = os.pipe()
        self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """Block until listening (True) or until ``timeout`` seconds passed (False)."""
        return self._listening.wait(timeout)

    def stop(self, timeout: float = CONNECT_TIMEOUT_SECONDS + 2.0) -> bool:
        """Ask the thread to end and wait for it; True if it ended within ``timeout`` s."""
        self._stopping.set()
        with self._wake_lock:
            if self._wake is not None:
                os.write(self._wake[1], b"x")
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._listen_until_stopped()
        finally:
            with self._wake_lock:
                if self._wake is not None:
                    os.close(self._wake[0])
                    os.close(self._wake[1])
                    self._wake = None

    def _listen_until_stopped(self) -> None:
        delay = FIRST_BACKOFF_SECONDS
        while not self._stopping.is_set():
            try:
                self._listen_once()
            except Exception as error:
                was_listening = self._listening.is_set()
                level = logging.WARNING if was_listening else logging.DEBUG
                log.log(level, "change notifications lost", extra={"error": type(error).__name__})
            if self._listening.is_set():
                self._listening.clear()
                if not self._stopping.is_set():
                    self._safely(self._on_lost)
                delay = FIRST_BACKOFF_SECONDS
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_BACKOFF_SECONDS)

    def _listen_once(self) -> None:
        """Connect, subscribe, and relay notifications until stopped or disconnected."""
        with self._connect() as connection:
            connection.execute(f"LISTEN {CHANGES_CHANNEL}")
            self._listening.set()
            log.info("listening for token changes", extra={"channel": CHANGES_CHANNEL})
            self._safely(self._on_change, None)  # whatever was sent while not listening
            assert self._wake is not None
            socket = connection.fileno()
            waiting = select.poll()  # not select(): descriptors past 1024 are fine
            waiting.register(socket, select.POLLIN)
            waiting.register(self._wake[0], select.POLLIN)
            while not self._stopping.is_set():
                ready = waiting.poll(STOP_CHECK_SECONDS * 1000)
                if not any(fd == socket for fd, _ in ready):
                    continue  # the time to look at the stop flag, or stop() woke us
                # Data (or the connection's end, which raises): read what has arrived.
                for notification in connection.notifies(timeout=0.0):
                    self._safely(self._on_change, _position(notification.payload))
        if not self._stopping.is_set():
            raise ConnectionError("the listening connection ended")

    def _connect(self) -> psycopg.Connection[tuple[object, ...]]:
        import psycopg

        return psycopg.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=APPLICATION_NAME,
            # A peer that vanishes without closing the socket is noticed in ~25 s.
            keepalives=1,
            keepalives_idle=10,
            keepalives_interval=5,
            keepalives_count=3,
        )

    @staticmethod
    def _safely(callback: Callable[..., None], *args: object) -> None:
        try:
            callback(*args)
        except Exception:
            log.exception("change callback failed")


def _position(payload: str) -> int | None:
    return int(payload) if payload.isdigit() else None
