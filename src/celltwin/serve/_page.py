"""The web page of ``celltwin serve``: one HTML file, one script, one style sheet.

The page is plain HTML, CSS and JavaScript shipped in ``celltwin/serve/static`` (package data):
no framework, no CDN, no web fonts, so it works on a lab server without internet. It talks to the
HTTP API of the same process under ``api_prefix`` and draws its plots as inline SVG.

:func:`mount_page` adds two things to an app: ``GET /`` (the page) and ``GET /static/{file}``
(its script and style sheet). Neither carries data, so they need no token; every call the page
makes to the API sends the token the user typed (``Authorization: Bearer``) once the API has
answered 401.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

#: The files of the page, by the name the browser asks for, with their media types. Only these
#: are served: a request never names a path on disk.
STATIC_FILES: dict[str, str] = {
    "app.css": "text/css; charset=utf-8",
    **{
        f"{name}.js": "text/javascript; charset=utf-8"
        for name in ("app", "api", "combobox", "plots", "screen")
    },
}

#: Sent with the page and its files: scripts, styles and requests only from this origin (the
#: page has no inline script or style attribute), and no framing by other sites.
SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

_API_PLACEHOLDER = "__CELLTWIN_API_PREFIX__"


def read_static(name: str) -> str:
    """The text of the page file ``name`` (``"index.html"`` or a key of :data:`STATIC_FILES`)."""
    return (files("celltwin.serve") / "static" / name).read_text(encoding="utf-8")


def page_html(*, api_prefix: str = "/api/v1") -> str:
    """The page's HTML, pointing its script at the API under ``api_prefix``.

    Examples
    --------
    >>> 'data-api="/api/v1"' in page_html()
    True
    """
    if not api_prefix.startswith("/") or any(c in api_prefix for c in "\"'<>& "):
        raise ValueError(f"api_prefix must be a path starting with '/' (got {api_prefix!r})")
    return read_static("index.html").replace(_API_PLACEHOLDER, api_prefix.rstrip("/"))


def mount_page(app: FastAPI, *, api_prefix: str = "/api/v1") -> None:
    """Add the web page to ``app``: ``GET /`` and ``GET /static/{name}``.

    Parameters
    ----------
    app
        The FastAPI application of :func:`celltwin.serve.create_app` (or any FastAPI app that
        serves the celltwin API under ``api_prefix``).
    api_prefix
        Where the page finds the API.

    The files are read once, here; the routes are left out of the OpenAPI schema (they are
    not API).
    """
    from fastapi import HTTPException
    from fastapi.responses import HTMLResponse, Response

    html = page_html(api_prefix=api_prefix)
    contents = {name: read_static(name) for name in STATIC_FILES}

    @app.get("/", include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> Response:
        if name not in contents:
            raise HTTPException(status_code=404, detail={"message": f"no page file {name!r}"})
        return Response(contents[name], media_type=STATIC_FILES[name], headers=SECURITY_HEADERS)
