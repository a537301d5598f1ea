"""Test infrastructure: real server processes, a throwaway PostgreSQL cluster, HTTP clients.

Everything here drives the service from the outside, exactly as a user would: the
``apitokens`` executable of the virtualenv, real sockets, real databases.
"""

from support.clients import api
from support.postgres import PostgresCluster, PostgresUnavailable, postgres_available
from support.processes import (
    BootstrapError,
    RunningServer,
    ServerProcess,
    ServerStartError,
    apitokens_executable,
    free_port,
    run_bootstrap,
)

__all__ = [
    "BootstrapError",
    "PostgresCluster",
    "PostgresUnavailable",
    "RunningServer",
    "ServerProcess",
    "ServerStartError",
    "api",
    "apitokens_executable",
    "free_port",
    "postgres_available",
    "run_bootstrap",
]
