"""A throwaway PostgreSQL cluster for tests, built with Debian's ``initdb`` and ``pg_ctl``.

The cluster lives in a temporary directory, listens on 127.0.0.1 only (plus a unix socket
in that directory) on a free port, trusts every local connection, and is removed, data
and all, when it is closed or the interpreter exits. ``stop()`` and ``start()`` may be
called any number of times (outage tests); the port stays the same.

``initdb`` refuses to run as root, so as root every PostgreSQL binary runs as the
``postgres`` system user (``runuser -u postgres --``), which owns the directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import weakref
from pathlib import Path
from typing import TYPE_CHECKING, Self

import pytest

from support.processes import LOOPBACK, free_port

if TYPE_CHECKING:
    import psycopg

PG_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
OS_USER = "postgres"
MAX_CONNECTIONS = 200
PG_CTL_TIMEOUT_SECONDS = 60
_DATABASE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_PORT_IN_USE_MARKERS = ("address already in use", "could not create any tcp/ip sockets")
REQUIRE_POSTGRES_ENV = "APITOKENS_REQUIRE_POSTGRES"
FSYNC_ENV = "APITOKENS_TEST_PG_FSYNC"


class PostgresUnavailable(RuntimeError):
    """Debian's PostgreSQL server binaries (or psycopg) are not installed."""


class PostgresError(RuntimeError):
    """A PostgreSQL command failed; the message carries its output and the server log."""


def find_pg_bindir() -> Path | None:
    """Return the newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl."""
    found: list[tuple[tuple[int, ...], Path]] = []
    for bindir in PG_ROOT.glob("*/bin"):
        if not all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            continue
        try:
            version = tuple(int(part) for part in bindir.parent.name.split("."))
        except ValueError:
            continue
        found.append((version, bindir))
    return max(found)[1] if found else None


def postgres_available() -> bool:
    """True if a test cluster can be made here: server binaries and psycopg present."""
    return find_pg_bindir() is not None and importlib.util.find_spec("psycopg") is not None


def env_flag(name: str) -> bool:
    """True if environment variable *name* is set to 1/true/yes/on."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def require_postgres() -> None:
    """In a test: skip without PostgreSQL, or fail if ``APITOKENS_REQUIRE_POSTGRES=1``."""
    if postgres_available():
        return
    reason = (
        "PostgreSQL server binaries (Debian package postgresql) or psycopg are missing; "
        "scripts/test installs them"
    )
    if env_flag(REQUIRE_POSTGRES_ENV):
        pytest.fail(f"{reason}, and {REQUIRE_POSTGRES_ENV}=1", pytrace=False)
    pytest.skip(reason)


def _ensure_os_user() -> pwd.struct_passwd:
    """Return the ``postgres`` system user, creating it if Debian's package did not."""
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                OS_USER,
            ],
            check=True,
        )
        return pwd.getpwnam(OS_USER)


def _world_traversable(path: Path) -> bool:
    """True if every directory from / down to *path* lets other users pass through."""
    return all(os.stat(part).st_mode & stat.S_IXOTH for part in [path, *path.parents])


def _make_root_dir(as_os_user: bool) -> Path:
    base = Path(tempfile.gettempdir())
    if as_os_user and not _world_traversable(base):
        base = Path("/tmp")
    root = Path(tempfile.mkdtemp(prefix="apitokens-pg-", dir=base))
    if as_os_user:
        user = _ensure_os_user()
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


def _destroy(pg_ctl: list[str], datadir: Path, root: Path) -> None:
    """Finalizer: stop the server at once if it runs, then delete the whole directory."""
    if (datadir / "postmaster.pid").exists():
        subprocess.run(
            [*pg_ctl, "-D", str(datadir), "-m", "immediate", "-w", "-s", "stop"],
            cwd=root,
            capture_output=True,
            check=False,
            timeout=PG_CTL_TIMEOUT_SECONDS,
        )
    shutil.rmtree(root, ignore_errors=True)


class PostgresCluster:
    """A private PostgreSQL server. ``start()`` runs initdb the first time.

    Connection URLs use the ``postgres`` superuser without a password (trust auth):
    ``postgresql+psycopg://postgres@127.0.0.1:<port>/<database>``.
    """

    def __init__(self, bindir: Path | None = None, *, fsync: bool | None = None) -> None:
        """*fsync* defaults to off (env ``APITOKENS_TEST_PG_FSYNC=1`` turns it on).

        Off is safe for tests: it only matters if the whole machine crashes, and even
        ``stop("immediate")`` loses nothing. On, every ``DROP DATABASE`` (one per test)
        waits for a checkpoint's fsyncs: about 2 s each on a busy machine instead of 0.2 s.
        Benchmarks that want production-like commit costs pass ``fsync=True``.
        """
        found = bindir or find_pg_bindir()
        if found is None or importlib.util.find_spec("psycopg") is None:
            raise PostgresUnavailable(
                f"no initdb/pg_ctl under {PG_ROOT}/*/bin (apt-get install postgresql) "
                "or psycopg missing from the virtualenv"
            )
        self.bindir = found
        self.as_os_user = os.geteuid() == 0
        self.root = _make_root_dir(self.as_os_user)
        self.datadir = self.root / "data"
        self.log_path = self.root / "postgres.log"
        self.host = LOOPBACK
        self.port = free_port()
        self.fsync = env_flag(FSYNC_ENV) if fsync is None else fsync
        self._initialized = False
        self._pending_drops: list[str] = []
        self._finalizer = weakref.finalize(
            self, _destroy, self._command("pg_ctl"), self.datadir, self.root
        )

    def __repr__(self) -> str:
        return f"<PostgresCluster {self.host}:{self.port} {self.root}>"

    # -- commands ---------------------------------------------------------------------

    def _command(self, tool: str) -> list[str]:
        prefix = ["runuser", "-u", OS_USER, "--"] if self.as_os_user else []
        return [*prefix, str(self.bindir / tool)]

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self._command(tool), *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
            timeout=PG_CTL_TIMEOUT_SECONDS + 30,
        )
        return done

    def _fail(self, what: str, done: subprocess.CompletedProcess[str]) -> PostgresError:
        return PostgresError(
            f"{what} failed with status {done.returncode}\n--- output ---\n"
            f"{done.stdout}{done.stderr}\n--- {self.log_path} ---\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # -- lifecycle --------------------------------------------------------------------

    def _initdb(self) -> None:
        done = self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        )
        if done.returncode != 0:
            raise self._fail("initdb", done)
        with (self.datadir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\ninclude 'apitokens_test.conf'\n")
        self._write_settings()
        self._initialized = True

    def _write_settings(self) -> None:
        path = self.datadir / "apitokens_test.conf"
        path.write_text(
            f"listen_addresses = '{self.host}'\n"
            f"port = {self.port}\n"
            f"unix_socket_directories = '{self.root}'\n"
            f"max_connections = {MAX_CONNECTIONS}\n"
            f"fsync = {'on' if self.fsync else 'off'}\n"
            "logging_collector = off\n",
            encoding="utf-8",
        )
        if self.as_os_user:
            owner = pwd.getpwnam(OS_USER)
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def is_running(self) -> bool:
        if not self._initialized:
            return False
        return self._run("pg_ctl", "-D", str(self.datadir), "status").returncode == 0

    def start(self) -> Self:
        """Start the server (running initdb first if needed); return once it accepts."""
        first = not self._initialized
        if first:
            self._initdb()
        if self.is_running():
            return self
        for attempt in range(3):
            done = self._run(
                "pg_ctl",
                "-D",
                str(self.datadir),
                "-l",
                str(self.log_path),
                "-w",
                "-t",
                str(PG_CTL_TIMEOUT_SECONDS),
                "-s",
                "start",
            )
            if done.returncode == 0:
                return self
            clash = any(m in self.log_tail().lower() for m in _PORT_IN_USE_MARKERS)
            if not (first and clash and attempt < 2):
                raise self._fail("pg_ctl start", done)
            self.port = free_port()
            self._write_settings()
        raise AssertionError("unreachable")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients; ``immediate``: crash-like)."""
        if not self.is_running():
            return
        done = self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-m",
            mode,
            "-w",
            "-t",
            str(PG_CTL_TIMEOUT_SECONDS),
            "-s",
            "stop",
        )
        if done.returncode != 0:
            raise self._fail("pg_ctl stop", done)

    def close(self) -> None:
        """Stop the server and delete its directory. The cluster cannot be used after."""
        self._finalizer()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- databases --------------------------------------------------------------------

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL (psycopg 3 driver) of *database* in this cluster."""
        return f"postgresql+psycopg://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def conninfo(self, database: str = "postgres") -> str:
        """libpq connection string of *database*, for ``psycopg.connect``."""
        return f"host={self.host} port={self.port} user={SUPERUSER} dbname={database}"

    def connect(self, database: str = "postgres", *, autocommit: bool = True) -> psycopg.Connection:
        """A new psycopg connection to *database* (the caller closes it)."""
        import psycopg

        return psycopg.connect(self.conninfo(database), autocommit=autocommit, connect_timeout=10)

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database (default name ``t_<random>``); return its URL."""
        name = name or f"t_{secrets.token_hex(6)}"
        if not _DATABASE_NAME.match(name):
            raise ValueError(f"database name {name!r} must match {_DATABASE_NAME.pattern}")
        from psycopg import sql

        self._drop_pending()
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url_for(name)

    def drop_database(self, name: str, *, later: bool = False) -> None:
        """Drop *name*, disconnecting its clients; ``later`` defers it to the next create.

        Deferring lets a test's database outlive that test's server processes, which are
        stopped after the database fixture is torn down.
        """
        if later:
            self._pending_drops.append(name)
            return
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def _drop_pending(self) -> None:
        while self._pending_drops:
            name = self._pending_drops.pop()
            with contextlib.suppress(Exception):
                self.drop_database(name)


class ReusedDatabases:
    """Fresh databases at the newest schema, copied from ``template`` once and then reused.

    ``CREATE DATABASE ... TEMPLATE`` costs 100-300 ms here; emptying a used database costs
    a few. ``acquire()`` returns a database whose tables are as empty as the template's:
    a database given back with ``release()`` is renamed and emptied (every row deleted,
    every sequence restarted: as new) at the next ``acquire()``, once the test that used it
    has closed its connections. One with a connection still open, or that cannot be
    emptied, is dropped instead, and a new copy is made.
    """

    def __init__(self, cluster: PostgresCluster, template: str) -> None:
        self.cluster = cluster
        self.template = template
        self._returned: list[str] = []
        self._schema: tuple[list[str], list[str]] | None = None

    def acquire(self) -> str:
        """The name of an empty database at the template's schema."""
        while self._returned:
            name = self._returned.pop()
            renamed = self._renamed(name)
            if renamed is not None and self._emptied(renamed):
                return renamed
            self.cluster.drop_database(renamed or name, later=True)
        return self._copy()

    def _renamed(self, name: str) -> str | None:
        """``name`` under a new name, or None while anyone is still connected to it.

        PostgreSQL refuses to rename a database with a session open, so this is the exact
        check that the test which used it is gone; and a connection it left behind that
        tries again finds no database, instead of writing into the next test's. A session
        seen open is not waited for: PostgreSQL would wait up to 5 s for it to end before
        refusing the rename (a new copy costs 100-300 ms)."""
        from psycopg import sql

        fresh = f"a_{secrets.token_hex(6)}"
        try:
            with self.cluster.connect() as admin:
                if admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE datname = %s "
                    "AND backend_type = 'client backend'",
                    (name,),
                ).fetchone():
                    return None
                admin.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(name), sql.Identifier(fresh)
                    )
                )
        except Exception:  # in use, or gone with an outage
            return None
        return fresh

    def release(self, name: str) -> None:
        """Give ``name`` back: emptied when it is next needed, not now (the test's apps may
        still be closing)."""
        self._returned.append(name)

    def _copy(self) -> str:
        from psycopg import sql

        name = f"a_{secrets.token_hex(6)}"
        self.cluster._drop_pending()
        with self.cluster.connect() as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(name), sql.Identifier(self.template)
                )
            )
        return name

    def _emptied(self, name: str) -> bool:
        from psycopg import sql

        try:
            with self.cluster.connect(name, autocommit=False) as conn:
                conn.execute("SET lock_timeout = '2s'")
                conn.execute("SET session_replication_role = replica")  # no FK checks
                tables, sequences = self._schema or self._read_schema(conn)
                for table in tables:  # DELETE: a few rows each, where TRUNCATE costs 70 ms
                    conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
                for sequence in sequences:
                    conn.execute("SELECT setval(%s::regclass, 1, false)", (sequence,))
                conn.commit()
        except Exception:  # gone with an outage, locked, anything: make a new copy
            return False
        return True

    def _read_schema(self, conn: psycopg.Connection) -> tuple[list[str], list[str]]:
        """Every table but Alembic's own (which keeps its revision), and every sequence."""
        tables = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'alembic_version' ORDER BY tablename"
        ).fetchall()
        sequences = conn.execute(
            "SELECT quote_ident(sequencename) FROM pg_sequences WHERE schemaname = 'public'"
        ).fetchall()
        self._schema = ([row[0] for row in tables], [row[0] for row in sequences])
        return self._schema
