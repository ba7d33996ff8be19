"""The application factory: every domain's router, the error mapping, health."""

from __future__ import annotations

from fastapi import FastAPI

from passpost import __version__, console
from passpost.web import docs, errors, polled
from passpost.web.body_limit import BodyLimitMiddleware
from passpost.web.headers import SecurityHeadersMiddleware
from passpost.web.origin import OriginCheckMiddleware
from passpost.web.rate_limit import RateLimitMiddleware, RateLimits


def create_app() -> FastAPI:
    """Build the FastAPI application with every router mounted."""
    from passpost.audience.api import batch_router
    from passpost.audience.api import router as audience_router
    from passpost.auth.api import router as auth_router
    from passpost.certs.api import router as certs_router
    from passpost.channels.api import router as channels_router
    from passpost.distribution.api import router as distribution_router
    from passpost.distribution.links import router as links_router
    from passpost.distribution.passes_api import router as passes_router
    from passpost.distribution.receipts import router as receipts_router
    from passpost.passkit.api import router as passkit_router
    from passpost.templates.api import router as templates_router
    from passpost.web.metrics import HttpMetricsMiddleware
    from passpost.web.metrics import router as metrics_router
    from passpost.web.ready import router as ready_router

    app = polled.PasspostAPI(
        title="passpost",
        version=__version__,
        description="Apple Wallet pass distribution (Volt MX Engagement Services compatible).",
        docs_url=None,
        redoc_url=None,
    )
    errors.install(app)
    docs.install(app)
    console.install(app)
    # Outermost last: metrics time everything; headers on every answer; then the cheap
    # refusals (rate, origin) before the body cap.
    rate_limits = RateLimits()
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(OriginCheckMiddleware)
    app.add_middleware(RateLimitMiddleware, limits=rate_limits)
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(HttpMetricsMiddleware)  # outermost: times everything, refusals too
    # Before all of them (and before FastAPI's own layers), the polled PassKit GETs, doing
    # what they do (see web/polled.py).
    polled.install(app, limits=rate_limits)
    for router in (
        auth_router,
        audience_router,
        batch_router,
        distribution_router,
        links_router,
        passes_router,
        templates_router,
        passkit_router,
        certs_router,
        channels_router,
        receipts_router,
        metrics_router,
        ready_router,
    ):
        app.include_router(router)

    @app.get("/health", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
