"""The ceiling: a bare Starlette app returning a constant JSON body, nothing else."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

_BODY = b'{"status":"ok"}'


async def constant(_request: Request) -> Response:
    return Response(_BODY, media_type="application/json")


app = Starlette(routes=[Route("/", constant), Route("/constant", constant)])
