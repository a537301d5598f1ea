"""``/docs``: Swagger UI, served from the installed package, never from a CDN.

The assets come from the ``fastapi-offline`` distribution (Swagger UI's own files, under
their Apache-2.0 license). The page works on an offline network, and no third party's
script ever runs on this origin: the page is sent with a strict Content-Security-Policy
(no inline script, no other origin), like the console.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

from apitokens.http.errors import error_response

router = APIRouter(include_in_schema=False)

DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": DOCS_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
}

# Relative URLs: the page is /docs, so "docs/..." and "openapi.json" resolve on this
# origin, also behind a reverse proxy that serves the service under a path prefix.
PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>apitokens - API documentation</title>
  <link rel="stylesheet" href="docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="docs/swagger-ui-bundle.js"></script>
  <script src="docs/init.js"></script>
</body>
</html>
"""

INIT = """window.ui = SwaggerUIBundle({
  url: new URL("openapi.json", document.baseURI).href,
  dom_id: "#swagger-ui",
  deepLinking: true,
  showExtensions: true,
  showCommonExtensions: true,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  layout: "BaseLayout",
});
"""


def _asset(name: str) -> bytes | None:
    try:
        return (resources.files("fastapi_offline") / "static" / name).read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        return None


@router.get("/docs")
async def docs_page() -> Response:
    return Response(PAGE, media_type="text/html; charset=utf-8", headers=HEADERS)


@router.get("/docs/init.js")
async def docs_init() -> Response:
    return Response(INIT, media_type="text/javascript; charset=utf-8", headers=HEADERS)


@router.get("/docs/{name}")
async def docs_asset(name: str) -> Response:
    body = _asset(name) if name in ASSETS else None
    if body is None:
        return error_response(404, f"no route /docs/{name}")
    headers = {**HEADERS, "Cache-Control": "public, max-age=86400"}
    return Response(body, media_type=ASSETS[name], headers=headers)
