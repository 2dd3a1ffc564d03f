"""The web page's files without a browser: what it loads, that it loads nothing from outside,
that every control has a label, that the routes serve exactly its files, and that a wheel ships
them (issue 20, point 2)."""

from __future__ import annotations

import fnmatch
import re
import tomllib
import warnings
from html.parser import HTMLParser
from pathlib import Path

import pytest

from celltwin.serve._page import SECURITY_HEADERS, STATIC_FILES, page_html, read_static

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src" / "celltwin" / "serve" / "static"
SVG_NS = "http://www.w3.org/2000/svg"


class _Tags(HTMLParser):
    """Every start tag of a document with its attributes, and the text inside ``<script>``."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text = ""
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data.strip()


def _tags() -> _Tags:
    parser = _Tags()
    parser.feed(read_static("index.html"))
    return parser


def test_the_page_points_its_script_at_the_api_prefix() -> None:
    assert 'data-api="/api/v1"' in page_html()
    assert 'data-api="/lab/api/v2"' in page_html(api_prefix="/lab/api/v2/")
    for bad in ["api/v1", '/a"><script>', "/a b"]:
        with pytest.raises(ValueError, match="api_prefix"):
            page_html(api_prefix=bad)


def test_every_file_the_page_loads_is_served_and_every_served_file_exists() -> None:
    tags = _tags().tags
    loaded = {
        value.removeprefix("/static/")
        for _, attrs in tags
        for key in ("src", "href")
        if (value := attrs.get(key)) and value.startswith("/static/")
    }
    for name in [n for n in STATIC_FILES if n.endswith(".js")]:
        loaded |= set(re.findall(r'from "\./([\w-]+\.js)"', read_static(name)))
    assert loaded == set(STATIC_FILES), "index.html and the modules load exactly the served files"
    assert sorted(p.name for p in STATIC.iterdir()) == sorted({*STATIC_FILES, "index.html"})


def test_nothing_comes_from_outside_and_nothing_runs_inline() -> None:
    """No CDN, font or remote URL (labs' servers have no internet); no inline script, style
    attribute or event handler attribute (the Content-Security-Policy forbids them)."""
    for name in ["index.html", *STATIC_FILES]:
        text = read_static(name).replace(SVG_NS, "")
        assert not re.search(r"https?:|//[\w.-]+\.\w+/|@import|url\((?!#)", text), name
    parser = _tags()
    assert parser.script_text == ""
    for tag, attrs in parser.tags:
        bad = [a for a in attrs if a == "style" or a.startswith("on")]
        assert not bad, f"<{tag}> has {bad}"
    assert "script-src 'self'" in SECURITY_HEADERS["Content-Security-Policy"]


def test_every_control_has_a_label_and_buttons_are_buttons() -> None:
    tags = _tags().tags
    labelled = {attrs["for"] for tag, attrs in tags if tag == "label" and attrs.get("for")}
    controls = [(t, a) for t, a in tags if t in {"input", "select", "textarea"}]
    assert len(controls) >= 10
    unlabelled = [a.get("id") for _, a in controls if a.get("id") not in labelled]
    assert not unlabelled, f"controls without a <label for>: {unlabelled}"
    for tag, attrs in tags:
        assert attrs.get("role") != "button", f"<{tag} role=button>: use a <button>"
        if tag == "button":
            assert attrs.get("type") in {"button", "submit"}, attrs
    combos = [a for t, a in tags if a.get("role") == "combobox"]
    assert len(combos) == 2
    ids = {a.get("id") for _, a in tags}
    for attrs in combos:
        assert attrs["aria-controls"] in ids and attrs["aria-expanded"] == "false"
    live = [a for _, a in tags if a.get("role") in {"alert", "status"} or a.get("aria-live")]
    assert len(live) >= 5  # errors and progress are announced


def test_a_wheel_ships_the_page() -> None:
    """pyproject's package-data patterns cover every file of the page."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["celltwin"]
    for path in STATIC.iterdir():
        relative = path.relative_to(ROOT / "src" / "celltwin").as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), relative


def test_the_routes_serve_the_page_and_only_its_files() -> None:
    fastapi = pytest.importorskip("fastapi", reason="the web app needs fastapi (celltwin[serve])")
    pytest.importorskip("httpx", reason="fastapi's TestClient needs httpx")
    with warnings.catch_warnings():  # starlette 1.x would rather have httpx2; httpx works
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from celltwin.serve._page import mount_page

    app = fastapi.FastAPI()
    mount_page(app, api_prefix="/api/v1")
    client = TestClient(app)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'data-api="/api/v1"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    for name, media in STATIC_FILES.items():
        got = client.get(f"/static/{name}")
        assert got.status_code == 200 and got.headers["content-type"] == media
        assert got.text == read_static(name)
    for bad in ["nope.js", "index.html", "..%2F_page.py", "%2e%2e%2f_page.py"]:
        assert client.get(f"/static/{bad}").status_code == 404, bad
    assert client.get("/static/../_page.py").status_code == 404
    assert not any(p == "/" or p.startswith("/static") for p in app.openapi()["paths"])
