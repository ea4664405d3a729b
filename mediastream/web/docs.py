"""API documentation: ``/openapi.json`` and two pages showing it, ``/docs`` and ``/redoc``.

The pages load Swagger UI and ReDoc from the packaged copies in ``static/vendor/`` (see its
README), never from a CDN, so they work on a machine without internet access. Their URLs are
relative, so the pages also work behind a reverse proxy that mounts the app under a prefix.
"""

from __future__ import annotations

from aiohttp import web

from mediastream.web.openapi import openapi_document

__all__ = ["openapi_json", "redoc_page", "swagger_ui_page"]

VENDOR = "static/vendor"  # relative to the page, i.e. /static/vendor/... from /docs

SWAGGER_UI_HTML = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>mediastream API — Swagger UI</title>
  <link rel="icon" type="image/png" href="{VENDOR}/swagger-ui/favicon-32x32.png">
  <link rel="stylesheet" href="{VENDOR}/swagger-ui/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{VENDOR}/swagger-ui/swagger-ui-bundle.js"></script>
  <script>
    // validatorUrl: null, or Swagger UI sends the document to validator.swagger.io.
    window.ui = SwaggerUIBundle({{
      url: "openapi.json",
      dom_id: "#swagger-ui",
      validatorUrl: null,
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout",
    }});
  </script>
</body>
</html>
"""

# ReDoc starts itself on the <redoc> element. Its theme names Roboto and Montserrat but loads
# no fonts; the browser falls back to its own sans-serif.
REDOC_HTML = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>mediastream API — ReDoc</title>
  <link rel="icon" type="image/png" href="{VENDOR}/swagger-ui/favicon-32x32.png">
  <style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
  <redoc spec-url="openapi.json"></redoc>
  <script src="{VENDOR}/redoc/redoc.standalone.js"></script>
</body>
</html>
"""

# The pages may load anything from this server and nothing from anywhere else: the browser
# refuses other origins itself, such as the Redocly logo ReDoc's menu shows from its CDN.
# (Inline code is allowed: Swagger UI's start-up script, and the styles both inject.)
PAGE_CSP = "default-src 'self' 'unsafe-inline' data: blob:"

_NO_CACHE = {"Cache-Control": "no-cache"}
_PAGE_HEADERS = {**_NO_CACHE, "Content-Security-Policy": PAGE_CSP}


async def openapi_json(request: web.Request) -> web.Response:
    """``GET /openapi.json``: the OpenAPI 3 document."""
    return web.json_response(openapi_document(), headers=_NO_CACHE)


async def swagger_ui_page(request: web.Request) -> web.Response:
    """``GET /docs``: the document in Swagger UI (with "Try it out")."""
    return web.Response(text=SWAGGER_UI_HTML, content_type="text/html", headers=_PAGE_HEADERS)


async def redoc_page(request: web.Request) -> web.Response:
    """``GET /redoc``: the document in ReDoc."""
    return web.Response(text=REDOC_HTML, content_type="text/html", headers=_PAGE_HEADERS)
