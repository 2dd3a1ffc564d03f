"""The web page of ``celltwin serve`` in a real browser (issue 20, first acceptance point).

The server runs with uvicorn on 127.0.0.1 in a thread; Playwright drives Debian's Chromium
(``/usr/bin/chromium``, or ``CELLTWIN_CHROMIUM``; a browser is never downloaded). The test picks a
perturbation by typing and the listbox, compares a second one, sees the plots and the top genes,
follows a 422 suggestion, launches a small screen, reads its hits, explains one and downloads
the CSV. Screenshots go to tmp_path (and to ``CELLTWIN_SHOTS`` when set, to look at them) and
must not be blank.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the web app needs fastapi (pip install 'celltwin[serve]')")
pytest.importorskip("uvicorn", reason="the web app needs uvicorn (pip install 'celltwin[serve]')")
pytest.importorskip("playwright.sync_api", reason="the browser test needs playwright (test extra)")
PIL = pytest.importorskip("PIL.Image", reason="the screenshot check needs Pillow")

import uvicorn  # noqa: E402
from fastapi import Body, FastAPI, HTTPException, Request  # noqa: E402
from fastapi.responses import JSONResponse, PlainTextResponse  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from celltwin.serve._page import mount_page  # noqa: E402

CHROMIUM = Path(os.environ.get("CELLTWIN_CHROMIUM", "/usr/bin/chromium"))
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (apt install chromium)"
)

# ---- a stand-in for create_app: the agreed API contract with canned answers (test only) ----

GENES = ["STAT1", "IRF1", "JAK1", "MYC", "CD274", "ISG15", *(f"G{i:02d}" for i in range(6, 40))]
MEASURED = ["STAT1", "IRF1", "JAK1", "MYC", "IRF1+STAT1"]
PRIOR_ONLY = ["TP53", "EGFR"]
CONTEXTS = ["A", "B", "C"]
ACTIVITIES = [
    *(("STAT1", "regulator"), ("IRF1", "regulator"), ("NFKB1", "regulator")),
    *(("JAK-STAT", "pathway"), ("TNFa", "pathway"), ("Hypoxia", "pathway")),
]


def _effects(context: str, perturbation: str) -> np.ndarray:
    seed = int(hashlib.sha256(f"{context}/{perturbation}".encode()).hexdigest()[:8], 16)
    return np.random.default_rng(seed).normal(0.0, 0.4, len(GENES))


def _check(context: str, perturbation: str) -> None:
    if context not in CONTEXTS:
        raise HTTPException(422, f"unknown context {context!r}")
    if perturbation not in MEASURED + PRIOR_ONLY:
        close = difflib.get_close_matches(perturbation, MEASURED + PRIOR_ONLY, n=3, cutoff=0.5)
        raise _Refused(f"unknown perturbation {perturbation!r}", close)


class _Refused(Exception):
    """A 422 with suggestions, in the body layout of celltwin serve."""

    def __init__(self, detail: str, suggestions: list[str]) -> None:
        self.detail, self.suggestions = detail, suggestions


def _prediction(context: str, perturbation: str) -> dict[str, Any]:
    """The layout of celltwin serve's POST /predict: gene columns, top genes, activities."""
    effect = _effects(context, perturbation)
    half = 0.05 + 0.1 * np.abs(np.sin(np.arange(len(GENES))))
    order = np.argsort(-np.abs(effect))
    scores = [
        {"name": n, "score": float(s), "kind": k}
        for (n, k), s in zip(ACTIVITIES, effect[:6] * 5, strict=True)
    ]
    return {
        "context": context,
        "perturbation": perturbation,
        "dose": "",
        "source": "measured" if perturbation in MEASURED else "prior",
        "in_domain": 0.02 if context == "C" else 0.9,
        "genes": GENES,
        "effect": effect.tolist(),
        "lower": (effect - half).tolist(),
        "upper": (effect + half).tolist(),
        "top_genes": [
            {"gene": GENES[i], "effect": effect[i], "lower": effect[i] - half[i], "upper": effect[i] + half[i]}
            for i in order[:10]
        ],
        "regulators": [{"name": a["name"], "score": a["score"]} for a in scores if a["kind"] == "regulator"],
        "pathways": [{"name": a["name"], "score": a["score"]} for a in scores if a["kind"] == "pathway"],
    }  # fmt: skip


def stub_app(*, token: str | None = None) -> FastAPI:
    """The API of issue 20 in celltwin serve's layout, answered from :func:`_effects`."""
    app = FastAPI()
    jobs: dict[str, dict[str, Any]] = {}

    @app.exception_handler(_Refused)
    def refused(request: Request, err: _Refused) -> JSONResponse:
        return JSONResponse({"detail": err.detail, "suggestions": err.suggestions}, 422)

    @app.middleware("http")
    async def auth(request: Request, call_next: Any) -> Any:
        wanted = f"Bearer {token}"
        if (
            token
            and request.url.path.startswith("/api/")
            and request.headers.get("authorization") != wanted
        ):
            return JSONResponse({"detail": {"message": "a token is needed"}}, status_code=401)
        return await call_next(request)

    @app.get("/api/v1/model")
    def model() -> dict[str, Any]:
        return {"contexts": CONTEXTS, "perturbations": MEASURED, "n_genes": len(GENES),
                "priors": "go", "represents_prior_genes": True,
        "benchmark": {"suite": "tiny", "pearson_delta": 0.61}}  # fmt: skip

    @app.get("/api/v1/perturbations")
    def perturbations(q: str = "", limit: int = 20) -> dict[str, Any]:
        names = [(n, "trained") for n in MEASURED] + [(n, "prior") for n in PRIOR_ONLY]
        hits = [{"name": n, "kind": k} for n, k in names if n.lower().startswith(q.lower())]
        return {"items": hits[:limit]}

    @app.post("/api/v1/predict")
    def predict(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        _check(body["context"], body["perturbation"])
        return _prediction(body["context"], body["perturbation"])

    @app.post("/api/v1/explain")
    def explain(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        _check(body["context"], body["perturbation"])
        found = _prediction(body["context"], body["perturbation"])
        keys = ["context", "perturbation", "top_genes", "regulators", "pathways"]
        sets = [
            {
                "set": "INTERFERON_GAMMA",
                "direction": "up",
                "overlap": 4,
                "pvalue": 1e-4,
                "fdr": 2e-3,
            }
        ]
        return {**{k: found[k] for k in keys}, "gene_sets": sets, "notes": []}

    @app.post("/api/v1/screen", status_code=202)
    def screen(body: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
        genes = MEASURED[:4] if body["candidates"].get("all") else body["candidates"]["genes"]
        for gene in genes:
            _check(body["context"], gene)
        assert body["candidates"].get("pairs", []) in ([], genes)  # pairs: a list of genes
        job_id = f"{len(jobs):032x}"
        jobs[job_id] = {"genes": genes, "context": body["context"], "polls": 0}
        return {"job_id": job_id, "status": "queued", "n_candidates": len(genes)}

    @app.get("/api/v1/jobs/{job_id}")
    def job(job_id: str) -> dict[str, Any]:
        state = jobs[job_id]
        state["polls"] += 1
        if state["polls"] < 3:
            return {"status": "running", "progress": state["polls"] / 3, "message": "scoring"}
        scores = [float(_effects(state["context"], g)[0]) for g in state["genes"]]
        ranked = sorted(zip(scores, state["genes"], strict=True), reverse=True)
        rows = [
            {"rank": i + 1, "label": g, "perturbation": g, "score": s, "lower": s - 0.1,
             "upper": s + 0.1, "pvalue": 0.01 * (i + 1), "fdr": 0.02 * (i + 1),
             "in_domain": 0.9, "prediction_source": "measured", "top_genes": "ISG15;CD274"}
            for i, (s, g) in enumerate(ranked)
        ]  # fmt: skip
        state["rows"] = rows
        return {"status": "done", "progress": 1.0, "rows": rows}

    @app.get("/api/v1/jobs/{job_id}/csv")
    def job_csv(job_id: str) -> PlainTextResponse:
        rows = jobs[job_id]["rows"]
        lines = ["rank,label,score"] + [f"{r['rank']},{r['label']},{r['score']}" for r in rows]
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/csv")

    mount_page(app)
    return app


# ---- serving and the browser --------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 in a thread; yield its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=_free_port(), log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield page
    context.close()
    # 401 and 422 answers are logged by Chromium as failed loads; script errors are not allowed.
    assert not [e for e in errors if "status of 4" not in e], errors


def shoot(target: Any, path: Path, **options: Any) -> Path:
    """Screenshot ``target`` (a page or a locator) to ``path``; check it is not blank."""
    target.screenshot(path=str(path), **options)
    image = PIL.open(path).convert("RGB")
    colours = image.getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 20, f"{path.name} looks blank ({len(colours)} colours)"
    most = max(count for count, _ in colours)
    assert most < 0.95 * image.width * image.height, f"{path.name} is almost one colour"
    if shots := os.environ.get("CELLTWIN_SHOTS"):
        Path(shots).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(shots) / path.name)
    return path


def pick(page: Page, box: str, typed: str, name: str, *, keyboard: bool) -> None:
    """Type ``typed`` into the combobox ``box`` and choose ``name`` from its listbox."""
    field = page.locator(f"#{box}")
    field.fill("")
    field.press_sequentially(typed, delay=30)
    listbox = page.locator(f"#{box}-list")
    expect(listbox).to_be_visible()
    expect(field).to_have_attribute("aria-expanded", "true")
    option = listbox.locator(f'li[role=option][data-name="{name}"]')
    if keyboard:
        names = listbox.locator("li").all_inner_texts()
        for _ in range(next(i for i, t in enumerate(names) if t.startswith(name)) + 1):
            field.press("ArrowDown")
        expect(option).to_have_attribute("aria-selected", "true")
        field.press("Enter")
    else:
        option.click()
    expect(field).to_have_value(name)
    expect(listbox).to_be_hidden()


# ---- the tests ----------------------------------------------------------------------------


def test_predict_compare_screen_explain(page: Page, tmp_path: Path) -> None:
    with serving(stub_app()) as url:
        page.goto(url + "/")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(page.locator("#model-summary")).to_contain_text(f"{len(GENES)} genes")
        page.click("#benchmark summary")
        expect(page.locator("#benchmark-text")).to_contain_text('"pearson_delta": 0.61')

        page.select_option("#context", "A")
        pick(page, "pert-a", "ST", "STAT1", keyboard=True)
        pick(page, "pert-b", "ir", "IRF1", keyboard=False)
        page.click("#predict-button")

        points = page.locator("#panels svg.chart[data-points] circle")
        expect(page.locator("#panels .panel")).to_have_count(2)
        assert page.locator("#panels svg.chart[data-points]").first.get_attribute(
            "data-points"
        ) == str(len(GENES))
        assert points.count() == 2 * len(GENES)
        assert page.locator("#panels .point-label").count() >= 10
        listed = page.locator("#panels table.genes tbody th").all_inner_texts()
        assert len(listed) == 20 and set(listed) <= set(GENES)
        assert page.locator("#panels svg.bars rect.bar").count() == 2 * 6
        expect(page.locator("#compare-figure svg circle")).to_have_count(len(GENES))
        expect(page.locator("#panels .warning")).to_have_count(0)
        shoot(page.locator("#predict"), tmp_path / "1-predict-compare.png")

        # Out of domain, and an unknown name answered with clickable suggestions.
        page.select_option("#context", "C")
        page.fill("#pert-b", "")
        page.fill("#pert-a", "STAT")
        page.click("#predict-button")
        expect(page.locator("#predict-error")).to_contain_text("unknown perturbation 'STAT'")
        page.locator("#predict-error").get_by_role("button", name="STAT1", exact=True).click()
        expect(page.locator("#panels .warning")).to_contain_text("Out of domain")
        expect(page.locator("#predict-error")).to_be_hidden()
        shoot(page.locator("#predict"), tmp_path / "2-predict-out-of-domain.png")

        page.select_option("#screen-context", "A")
        page.fill("#screen-genes", "STAT1, IRF1\nJAK1 MYX")
        page.select_option("#objective", "move")
        page.fill("#param-up", "ISG15")
        page.click("#screen-button")
        expect(page.locator("#screen-error")).to_contain_text("unknown perturbation 'MYX'")
        page.locator("#screen-error").get_by_role("button", name="MYC", exact=True).click()
        expect(page.locator("#screen-genes")).to_have_value("STAT1\nIRF1\nJAK1\nMYC")
        page.click("#screen-button")
        rows = page.locator("#hits tbody tr")
        expect(rows).to_have_count(4)
        expect(page.locator("#screen-status")).to_contain_text("done")
        assert page.locator("#screen-progress").evaluate("p => p.value") == 1
        hits = [r.locator("td").nth(1).inner_text() for r in rows.all()]
        assert sorted(hits) == ["IRF1", "JAK1", "MYC", "STAT1"]

        rows.first.get_by_role("button").click()
        expect(page.locator("#explain-bars svg rect.bar")).to_have_count(6)
        expect(page.locator("#explain-genes li")).to_have_count(10)
        expect(page.locator("#explain-sets li")).to_have_text(["INTERFERON_GAMMA (up, FDR 0.002)"])
        with page.expect_download() as download:
            page.click("#screen-csv")
        with open(download.value.path(), newline="") as f:
            table = list(csv.DictReader(f))
        assert [r["label"] for r in table] == hits
        shoot(page.locator("#screen"), tmp_path / "3-screen.png")
        shoot(page, tmp_path / "4-page.png", full_page=True)

        page.click("#explain-predict")  # back to the prediction of the explained hit
        expect(page.locator("#pert-a")).to_have_value(hits[0])
        expect(page.locator("#panels .panel h3")).to_have_text(f"{hits[0]} in A")


def test_token_is_asked_once_and_sent(page: Page) -> None:
    with serving(stub_app(token="s3cret")) as url:
        page.goto(url + "/")
        dialog = page.locator("#token-dialog")
        expect(dialog).to_be_visible()
        page.fill("#token-input", "wrong")
        page.click("#token-dialog button[value=ok]")
        expect(page.locator("#token-message")).to_contain_text("refused")
        page.fill("#token-input", "s3cret")
        page.click("#token-dialog button[value=ok]")
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(dialog).to_be_hidden()
        pick(page, "pert-a", "MY", "MYC", keyboard=True)
        page.keyboard.press("Enter")  # the listbox is closed: Enter submits the form
        expect(page.locator("#panels table.genes tbody tr")).to_have_count(10)


def test_plots_draw_a_genome_quickly_and_format_numbers(page: Page) -> None:
    """20,000 genes: the unlabelled ones become one path per colour, in well under a second."""
    with serving(stub_app()) as url:
        page.goto(url + "/")
        got = page.evaluate(
            """async () => {
              const m = await import("/static/plots.js");
              const points = Array.from({ length: 20000 }, (_, i) => ({
                x: Math.sin(i), y: 5 * Math.abs(Math.cos(1.7 * i)), name: `G${i}`,
                cls: i % 2 ? "up" : "down" }));
              const start = performance.now();
              const svg = m.scatter(points, { xLabel: "x", yLabel: "y", label: 15,
                                              rank: (p) => p.y, title: "t", width: 600 });
              document.body.append(svg);
              svg.getBBox();
              return { ms: performance.now() - start, points: svg.dataset.points,
                       circles: svg.querySelectorAll("circle").length,
                       paths: svg.querySelectorAll("path.dots").length,
                       labels: svg.querySelectorAll(".point-label").length,
                       ticks: m.ticks(0, 1, 5), spread: m.ticks(-0.73, 2.2, 5),
                       fmt: [0.000123, 1234.5, NaN, -0.5, 0].map((v) => m.fmt(v)) };
            }"""
        )
    assert got["points"] == "20000" and got["circles"] == 15 and got["paths"] == 2
    assert 5 <= got["labels"] <= 15
    print(f"scatter of 20,000 genes drawn in {got['ms']:.0f} ms")  # benchmarks/notes/servepage.md
    assert got["ms"] < 1500, got["ms"]
    assert got["ticks"] == [0, 0.2, 0.4, 0.6, 0.8, 1]
    assert got["spread"] == [-0.5, 0, 0.5, 1, 1.5, 2]
    assert got["fmt"] == ["1.23e-4", "1230", "–", "-0.5", "0"]


# ---- the real server: create_app with a tiny transition model (tests/serve/conftest.py) ----


def _screen_without_engine(holder: dict[str, Any]) -> Any:
    """A screen runner for an installation without ``celltwin.screen``: the model's predicted
    effects of each single, ranked by their largest change (what ``specific`` looks at)."""
    import pandas as pd

    from celltwin.models import predict_effects

    def run(job: Any, progress: Any) -> pd.DataFrame:
        served = holder["served"]
        conditions = [(job.context, p) for p in job.singles]
        effects = predict_effects(served.model, served.controls, conditions=conditions)
        x = np.asarray(effects.X, dtype=float)
        progress(0.5)
        score = np.abs(x).max(axis=1)
        order = np.argsort(-score)
        genes = np.asarray(effects.var_names)
        return pd.DataFrame({
            "rank": np.arange(1, len(order) + 1), "label": np.asarray(job.singles)[order],
            "perturbation": np.asarray(job.singles)[order], "score": score[order],
            "top_genes": [";".join(genes[np.argsort(-np.abs(x[i]))[:3]]) for i in order],
        })  # fmt: skip

    return run


@pytest.fixture(scope="module")
def real_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """``celltwin serve``'s app on 127.0.0.1 (the screen engine when installed)."""
    import importlib.util

    serve = pytest.importorskip("celltwin.serve")
    if not hasattr(serve, "create_app"):
        pytest.skip("celltwin.serve has no create_app yet")
    model_dir = request.getfixturevalue("model_dir")  # tests/serve/conftest.py
    holder: dict[str, Any] = {}
    engine = importlib.util.find_spec("celltwin.screen") is not None
    app = serve.create_app(
        model_dir, screen_runner=None if engine else _screen_without_engine(holder)
    )
    holder["served"] = app.state.served
    with serving(app) as url:
        yield url


def test_real_server_predict_and_screen(real_url: str, page: Page, tmp_path: Path) -> None:
    """The acceptance path on the real server: pick, plot, top genes, screen, read the hits."""
    page.goto(real_url + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    served = page.evaluate("fetch('/api/v1/model').then((r) => r.json())")
    single = next(p for p in served["perturbations"] if "+" not in p)
    page.select_option("#context", served["contexts"][0])
    pick(page, "pert-a", single[:3], single, keyboard=True)
    page.click("#predict-button")

    plot = page.locator("#panels svg.chart[data-points]")
    expect(plot).to_have_count(1)
    assert plot.get_attribute("data-points") == str(served["n_genes"])
    assert plot.locator("circle").count() == served["n_genes"]
    listed = page.locator("#panels table.genes tbody th").all_inner_texts()
    found = page.evaluate("fetch('/api/v1/genes?limit=200').then((r) => r.json())")["items"]
    genes = {item["name"] for item in found}
    assert len(genes) == served["n_genes"]
    assert len(listed) >= 10 and set(listed) <= genes
    shoot(page.locator("#predict"), tmp_path / "5-real-predict.png")

    candidates = [p for p in served["perturbations"] if "+" not in p]
    page.select_option("#screen-context", served["contexts"][0])
    page.fill("#screen-genes", "\n".join(candidates))
    page.select_option("#objective", "specific")
    page.click("#screen-button")
    rows = page.locator("#hits tbody tr")
    expect(rows).to_have_count(len(candidates), timeout=20_000)
    hits = [r.locator("td").nth(1).inner_text() for r in rows.all()]
    assert sorted(hits) == sorted(candidates)
    ranks = [int(r.locator("td").first.inner_text()) for r in rows.all()]
    shown = page.locator("#hits thead th:visible").all_inner_texts()
    assert {"Rank", "Candidate", "Score", "Top genes"} <= set(shown)
    assert ranks == list(range(1, len(candidates) + 1))
    shoot(page.locator("#screen"), tmp_path / "6-real-screen.png")
