"""Who may ask and how much: loopback by default, bearer tokens, request body limits.

The guard is plain ASGI (no web framework import), so it sits in front of every route: it
refuses a request without the configured token (401) and a body over the limit (413, from
``Content-Length`` before anything is read, and while the body streams in when the length is
not declared), before the application parses anything.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

__all__ = ["MIN_TOKEN_LENGTH", "Guard", "check_bind", "is_loopback", "read_token"]

#: Shortest token accepted from a token file.
MIN_TOKEN_LENGTH = 16

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (``localhost``, ``127.0.0.0/8``, ``::1``)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token.

    Raises
    ------
    ValueError
        When ``host`` is not a loopback address and no token is configured.
    """
    if token is None and not is_loopback(host):
        raise ValueError(
            f"refusing to listen on host={host!r} without a token: anyone who can reach it "
            "could query the model. Fix: give token_file=FILE (a secret of at least "
            f"{MIN_TOKEN_LENGTH} characters), or keep the default host 127.0.0.1"
        )


def read_token(path: str | os.PathLike[str]) -> str:
    """The token in a file (surrounding whitespace dropped).

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ValueError
        When the token is shorter than :data:`MIN_TOKEN_LENGTH` or spans several lines.
    """
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"token_file={str(file)!r} is not a file")
    token = file.read_text().strip()
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ValueError(
            f"token_file={str(file)!r} must hold one token of at least {MIN_TOKEN_LENGTH} "
            "characters without spaces. Fix: e.g. python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))' > FILE"
        )
    return token


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer <token>`` header."""
    if not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


async def _respond(send: Send, status: int, detail: str, headers: dict[str, str]) -> None:
    body = json.dumps({"detail": detail, "field": None, "suggestions": [], "allowed": []})
    raw = [(b"content-type", b"application/json")]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body.encode()})


class Guard:
    """ASGI middleware: bearer token on protected paths, and a body size limit.

    Parameters
    ----------
    app
        The wrapped application.
    token
        Required token, or None (no authentication).
    max_body
        Largest request body in bytes.
    protected
        Path prefix that needs the token (the API).
    open_paths
        Paths under ``protected`` that never need it (the health check).
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: str | None,
        max_body: int,
        protected: str,
        open_paths: frozenset[str],
    ) -> None:
        self.app = app
        self.token = token
        self.max_body = max_body
        self.protected = protected
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path = str(scope.get("path", ""))
        if (
            self.token is not None
            and path.startswith(self.protected)
            and path not in self.open_paths
            and not token_matches(headers.get("authorization"), self.token)
        ):
            detail = "missing or wrong token: send the header 'Authorization: Bearer <token>'"
            await _respond(send, 401, detail, {"www-authenticate": "Bearer"})
            return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body:
            await _respond(send, 413, self._too_large(int(declared)), {"connection": "close"})
            return
        if scope.get("method") in ("POST", "PUT", "PATCH"):
            body = await self._read_body(receive)
            if body is None:
                await _respond(send, 413, self._too_large(None), {"connection": "close"})
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _too_large(self, size: int | None) -> str:
        got = f"{size} bytes" if size is not None else "more"
        return f"request body too large: at most {self.max_body} bytes (got {got})"

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or None as soon as it passes the limit."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, then: Receive) -> Receive:
    """A ``receive`` that hands the already read body to the application once, then waits on
    the connection as before (for its disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await then()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
