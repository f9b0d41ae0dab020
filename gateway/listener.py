"""The gateway's listening socket, claimed before anything else starts."""

from __future__ import annotations

import errno
import socket

from gateway.config import ConfigError


def claim_port(host: str, port: int) -> socket.socket:
    """A listening socket on host:port for the gateway; ConfigError when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on accepted connections whose
    # protocol says TCP, and without it every response on a kept-alive connection waited
    # for the client's delayed ACK (about 40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # As uvicorn does: a port left in TIME_WAIT by the last demo is free to reuse.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use (another demo or gateway?); "
                f"choose another with --port (for the demo: make demo PORT={port + 10})"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock
