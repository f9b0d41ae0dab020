"""The uvicorn server settings of the gateway: one place for `serve`, `demo` and the tests."""

from __future__ import annotations

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import LOGGING_CONFIG

from gateway.http_protocol import header_deadline_protocol
from gateway.runtime import Runtime


def uvicorn_config(
    app: Starlette, *, log_level: str = "info", host: str = "127.0.0.1", port: int = 8000
) -> uvicorn.Config:
    """The uvicorn.Config for an app made by create_app; host and port unless sockets are given."""
    runtime: Runtime = app.state.runtime
    limits = runtime.config.limits
    # JSON logs: uvicorn keeps its hands off logging, so its own lines reach the root
    # handler `credit-gateway` set up (gateway/logging_setup.py) as JSON too.
    json_logs = runtime.config.logging.format == "json"
    return uvicorn.Config(
        app,
        log_config=None if json_logs else LOGGING_CONFIG,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="on",
        # h11 in our subclass: the deadline for request headers (docs/operations.md). The
        # parser is pinned rather than "auto", so installing httptools changes nothing.
        http=header_deadline_protocol(limits.header_timeout_s),
        # Ours is gateway/access_log.py: uvicorn's line carries the raw query string, and
        # with it whatever a client chose to put there.
        access_log=False,
    )
