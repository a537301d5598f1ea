"""Operational routes: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client.exposition import choose_encoder
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from apitokens.http.errors import error_response
from apitokens.http.render import json_response
from apitokens.http.schemas import ErrorBody
from apitokens.http.security import ServicesDep

router = APIRouter(tags=["operations"])

_OK = b'{"status":"ok"}'


@router.get("/healthz", summary="Liveness", include_in_schema=True)
async def healthz() -> Response:
    """200 while the process serves requests. No database, no authentication."""
    return Response(_OK, media_type="application/json")


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"model": ErrorBody, "description": "The token database is unavailable"}},
)
async def readyz(services: ServicesDep) -> Response:
    """200 when the database is prepared (migrated) and answers, 503 otherwise."""
    try:
        services.background.readiness.check()
        await run_in_threadpool(services.store.ping)
    except Exception:
        return error_response(503, "the token database is unavailable")
    return json_response({"status": "ready"})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    """Prometheus text (or OpenMetrics, if asked). No authentication: it holds no secret
    and no token id."""
    if not services.settings.metrics:
        return error_response(404, "metrics are disabled on this server")
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    # Off the loop: the tokens-stored gauge may run a COUNT at scrape time.
    body = await run_in_threadpool(encode, services.metrics.registry)
    return Response(body, headers={"content-type": content_type})
