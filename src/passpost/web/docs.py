"""OpenAPI pages served without a CDN: Swagger UI 5 is vendored in ``web/static/swagger-ui``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from passpost.errors import ERROR_SCHEMA

ASSETS = "/docs/assets"
SWAGGER_UI = Path(__file__).parent / "static" / "swagger-ui"


def install(app: FastAPI) -> None:
    """``/docs`` (Swagger UI) with its assets under ``/docs/assets``; no ReDoc (CDN-only)."""
    _document_error_shape(app)
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_UI), name="docs")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )


def _document_error_shape(app: FastAPI) -> None:
    """Add the ``ErrorBody`` schema the routes' error responses refer to."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            schema.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = (
                ERROR_SCHEMA
            )
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
