"""Every figure and page celltwin writes, rendered in headless Chromium and checked as a reader.

The pages: ``celltwin evaluate``'s report, ``celltwin benchmark``'s report (a smoke run, and a
one-fold run with one unit per model as in the demo) and the demo's figures (composition and
effects). In the browser, a script measures every SVG text element and fails on any that lies
outside its figure (a clipped legend or label); in Python, every visible panel of every figure
must draw data (no empty panels). Screenshots of each page are taken; with
``CELLTWIN_SCREENSHOTS=<folder>`` they are kept there to be looked at.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.image import imread

from celltwin import pl, pp
from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.benchmark import Leaderboard, get_suite, run_benchmark
from celltwin.benchmark._folds import TIMING_COLUMNS, UNIT_COLUMNS
from celltwin.benchmark._leaderboard import report_tables
from celltwin.eval import evaluate
from celltwin.simulate import simulate

# Collects, for each inline SVG, the text elements drawn outside the SVG's box.
_CHECK = """
<script>
window.addEventListener('load', function(){
  var found = [], svgs = document.querySelectorAll('svg');
  svgs.forEach(function(svg, i){
    var box = svg.getBoundingClientRect();
    svg.querySelectorAll('text').forEach(function(t){
      var r = t.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) { return; }
      if (r.left < box.left - 1 || r.right > box.right + 1 ||
          r.top < box.top - 1 || r.bottom > box.bottom + 1) {
        found.push({svg: i, text: t.textContent,
                    text_box: [r.left, r.top, r.right, r.bottom],
                    svg_box: [box.left, box.top, box.right, box.bottom]});
      }
    });
  });
  var wide = [];
  document.querySelectorAll('div.scroll').forEach(function(div){
    if (div.scrollWidth > div.clientWidth + 1) { wide.push(div.scrollWidth - div.clientWidth); }
  });
  var pre = document.createElement('pre');
  pre.id = 'layout-check';
  pre.textContent = JSON.stringify({n_svg: svgs.length, outside: found, wide: wide});
  document.body.appendChild(pre);
});
</script>
"""


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("chromium is not installed (apt-get install -y chromium); .ci/run installs it")


def _browser(profile: Path, *args: str) -> str:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
    ]
    done = subprocess.run(
        [_chromium(), *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )
    return done.stdout


def _svg_page(figures: dict[str, Figure]) -> str:
    """A page of figures as inline SVG (the demo's PNG figures, checked as the reports are)."""
    body = "".join(f"<h2>{name}</h2>{pl.figure_svg(fig)}" for name, fig in figures.items())
    return f"<!DOCTYPE html><html><body>{body}</body></html>"


def _empty_panels(fig: Figure) -> list[str]:
    """Visible panels that draw no data (reference lines alone do not count)."""
    return [
        ax.get_title() or ax.get_label() or "panel"
        for ax in fig.axes
        if ax.get_visible() and not (ax.collections or ax.images or ax.patches)
    ]


# --- what celltwin writes, on small generated data ---------------------------------------------


def _one_unit_board() -> Leaderboard:
    """The demo's setting: one fold, one unit per model, two models tied (mean, context_shift)."""
    suite = get_suite("kang2018-heldout-celltype")
    values = {"transition": 0.91, "context_shift": 0.83, "mean": 0.83, "control": 0.0}
    rows = []
    for model, v in {**values, "ceiling": 0.95}.items():
        for metric in suite.metrics:
            rows.append(("CD14_Mono", model, "CD14_Mono", "stimulated", metric, v, ""))
    results = pd.DataFrame(rows, columns=list(UNIT_COLUMNS))
    timings = pd.DataFrame(columns=list(TIMING_COLUMNS))
    return Leaderboard.from_results(results, suite=suite, timings=timings, record={}, seed=0)


@pytest.fixture(scope="module")
def written(
    tmp_path_factory: pytest.TempPathFactory, cells
) -> dict[str, tuple[Path, list[Figure]]]:
    """``{page: (report.html, the figures drawn on it)}``."""
    root = tmp_path_factory.mktemp("rendering")
    pages: dict[str, tuple[Path, list[Figure]]] = {}

    result = evaluate(cells(0, 0.0), cells(1, 0.1), train=cells(2, 0.0), n_repeats=1, n_boot=20)
    folder = pl.write_evaluation(result, root / "evaluate")
    tables = {"prediction": result.tables()}
    pages["evaluate"] = (folder / pl.REPORT_FILE, _report_figures(tables))

    board = run_benchmark(
        "sim-doses",
        models=["mean", "nearest_dose"],
        folds=["highest"],
        out=root / "benchmark",
        seed=0,
        progress=False,
        isolate=False,
        smoke=True,
    )
    pages["benchmark"] = (
        root / "benchmark" / pl.REPORT_FILE,
        _report_figures(report_tables(board)),
    )

    demo = _one_unit_board()
    demo.write(root / "demo_benchmark")
    pages["demo benchmark"] = (
        root / "demo_benchmark" / pl.REPORT_FILE,
        _report_figures(report_tables(demo)),
    )

    adata = simulate(n_genes=60, n_tfs=6, contexts=("A", "B"), n_perturbations=3,
                     combinations=0, cells_per_condition=20, seed=0).adata  # fmt: skip
    shares = pd.crosstab(adata.obs[CONTEXT], adata.obs[PERTURBATION], normalize="columns")
    figures = {
        "composition": pl.composition(shares),
        "effects": pl.effect_heatmap(pp.pseudobulk(adata), n_genes=20),
    }
    for name, fig in figures.items():
        fig.savefig(root / f"{name}.png", dpi=80)
    (root / "demo_figures.html").write_text(_svg_page(figures), encoding="utf-8")
    pages["demo figures"] = (root / "demo_figures.html", list(figures.values()))
    return pages


def _report_figures(models: dict) -> list[Figure]:
    scatter = pl.delta_scatter(models)
    return [pl.metric_distributions(models), *([scatter] if scatter is not None else [])]


def _each(written: dict) -> Iterator[tuple[str, Path, list[Figure]]]:
    for name, (page, figures) in written.items():
        yield name, page, figures


# --- the checks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["evaluate", "benchmark", "demo benchmark", "demo figures"])
def test_no_text_outside_its_figure_and_no_empty_panel(written, page, tmp_path) -> None:
    path, figures = written[page]
    for fig in figures:
        assert _empty_panels(fig) == [], f"{page}: panels without data"
    checked = tmp_path / "checked.html"
    checked.write_text(path.read_text(encoding="utf-8") + _CHECK, encoding="utf-8")
    dom = _browser(
        tmp_path / "profile",
        "--virtual-time-budget=5000",
        "--window-size=1280,3000",
        "--dump-dom",
        checked.as_uri(),
    )
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, flags=re.S)
    assert found, f"{page}: the check did not run"
    report = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert report["n_svg"] >= 1
    assert report["outside"] == [], f"{page}: text outside its figure: {report['outside'][:5]}"
    assert report["wide"] == [], f"{page}: a table scrolls sideways by {report['wide']} px"


@pytest.mark.parametrize("page", ["evaluate", "benchmark", "demo benchmark", "demo figures"])
def test_screenshot_of_each_page(written, page, tmp_path) -> None:
    path, _ = written[page]
    shot = tmp_path / f"{page.replace(' ', '_')}.png"
    _browser(tmp_path / "profile", f"--screenshot={shot}", "--window-size=1280,3000", path.as_uri())
    img = imread(shot)
    assert img.shape[:2] == (3000, 1280)
    assert float(img[..., :3].std()) > 0.05  # not a blank page
    keep = os.environ.get("CELLTWIN_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


def test_reports_open_with_the_verdict_and_one_unit_has_no_interval(written) -> None:
    for page in ("evaluate", "benchmark", "demo benchmark"):
        html = written[page][0].read_text(encoding="utf-8")
        assert html.index('id="verdict"') < html.index('id="summary"'), page
    demo = written["demo benchmark"][0].read_text(encoding="utf-8")
    summary = demo.split('id="summary"', 1)[1].split("</table>", 1)[0]
    assert "n=1" in summary and "[" not in summary  # a value and n, no degenerate [x, x]
    assert "context_shift (baseline) and mean (baseline) score the same" in demo
    assert "1 fold, no CI" in demo
