"""The HTML report: self-contained, built from tables, rendered and sorted by a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.pl._report import delta_scatter, metric_distributions, render_report

METRICS = {"mae": False, "pds": True}


def _tables(seed: int, n_perts: int = 12) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    perts = [f"P{i:02d}" for i in range(n_perts)]
    values = {"mae": rng.uniform(0.1, 0.4, n_perts), "pds": rng.uniform(0.5, 1.0, n_perts)}
    values["pds"][3] = np.nan  # an undefined value must not break sorting or plots
    metrics = pd.concat(
        [
            pd.DataFrame({PERTURBATION: perts, CONTEXT: "K562", "metric": m, "value": v})
            for m, v in values.items()
        ],
        ignore_index=True,
    )
    rows = []
    for source, role, shift in (("model", "model", 0.0), ("control", "baseline", 0.2),
                                ("mean", "baseline", 0.1), ("ceiling", "ceiling", -0.05)):  # fmt: skip
        for m, v in values.items():
            mean = float(np.nanmean(v)) + shift
            rows.append({"source": source, "role": role, "metric": m, "mean": mean,
                         "median": mean, "ci_low": mean - 0.02, "ci_high": mean + 0.02,
                         "n": n_perts, "higher_is_better": METRICS[m],
                         "description": f"<{m}> & co"})  # fmt: skip
    genes = [f"G{j}" for j in range(10)]
    true = rng.normal(0, 1, (n_perts, 10))
    deltas = pd.DataFrame(
        {
            PERTURBATION: np.repeat(perts, 10),
            CONTEXT: "K562",
            "gene": np.tile(genes, n_perts),
            "true_delta": true.ravel(),
            "pred_delta": (true + rng.normal(0, 0.3, true.shape)).ravel(),
        }
    )
    return {"metrics": metrics, "summary": pd.DataFrame(rows), "deltas": deltas}


def _rows(html: str) -> list[str]:
    table = html.split('id="perturbations"', 1)[1]
    body = table.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


def test_report_is_self_contained_and_complete() -> None:
    page = render_report({"linear": _tables(0)}, title="Eval <linear>", notes=["a & b"])
    assert page.startswith("<!DOCTYPE html>")
    assert "<title>Eval &lt;linear&gt;</title>" in page and "a &amp; b" in page
    # No network: no external scripts, stylesheets, images or fonts.
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert page.count("<svg") == 2  # distributions + scatter grid
    assert len(_rows(page)) == 12
    summary = page.split('id="summary"', 1)[1].split("</table>", 1)[0]
    assert "baseline: control" in summary and "baseline: mean" in summary and "ceiling" in summary
    assert 'title="&lt;mae&gt; &amp; co"' in summary


def test_several_models_side_by_side() -> None:
    models = {"linear": _tables(0), "mean": _tables(1)}
    page = render_report(models, title="two models")
    assert len(_rows(page)) == 24
    head = page.split('id="perturbations"', 1)[1].split("</thead>", 1)[0]
    assert 'data-key="model"' in head
    fig = metric_distributions(models)
    assert len([ax for ax in fig.axes if ax.get_visible()]) == 2
    scatter = delta_scatter(models, max_perturbations=5)
    assert scatter is not None
    panels = [ax for ax in scatter.axes if ax.get_visible()]
    assert len(panels) == 5 and len(panels[0].collections) == 2  # one point cloud per model


def test_scatter_shows_the_largest_effects_first() -> None:
    tables = _tables(2, n_perts=30)
    fig = delta_scatter({"m": tables}, max_perturbations=24)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    strength = tables["deltas"].assign(a=tables["deltas"]["true_delta"].abs())
    expected = strength.groupby(PERTURBATION)["a"].sum().sort_values(ascending=False)
    assert titles == expected.index[:24].tolist()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    exe = _chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    return subprocess.run(
        [exe, *flags, *args], capture_output=True, text=True, timeout=120, check=True
    )


def test_chromium_renders_plots_and_sorts_the_table(tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    page.write_text(render_report({"linear": _tables(0)}, title="browser"), encoding="utf-8")
    # The hash asks the page's script to sort by pds, descending, on load.
    dom = _browser(tmp_path, "--dump-dom", f"{page.as_uri()}#sort=-pds").stdout
    assert dom.count("<svg") == 2 and "<path" in dom
    rows = _rows(dom)
    assert len(rows) == 12
    col = list(METRICS).index("pds") + 1  # after the perturbation column
    shown = [re.findall(r'data-v="([^"]*)"', r)[col] for r in rows]
    numbers = [float(v) for v in shown if v]
    assert numbers == sorted(numbers, reverse=True)
    assert shown[-1] == ""  # the NaN goes last
    assert 'aria-sort="descending"' in dom

    shot = tmp_path / "shot.png"
    _browser(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri())
    img = imread(shot)
    assert img.shape[:2] == (2000, 1280)
    assert float(img[..., :3].std()) > 0.05  # not a blank page


def test_few_values_are_dots_many_are_histograms_and_bounded_axes_stop() -> None:
    few, many = _tables(0, n_perts=4), _tables(1, n_perts=30)
    for tables in (few, many):
        pds = tables["metrics"]["metric"] == "pds"
        tables["metrics"].loc[pds, "value"] = 1.0  # a score at its best: the axis stops at 1
        refs = tables["summary"]["metric"] == "pds"
        tables["summary"].loc[refs, "mean"] = 0.9
    dots = metric_distributions({"m": few}).axes[1]
    assert dots.collections and not dots.patches and dots.get_xlim()[1] == 1.0
    bars = metric_distributions({"m": many}).axes[1]
    assert bars.patches and bars.get_xlim()[1] == 1.0
    # A metric without any finite value gets no (empty) panel.
    few["metrics"].loc[few["metrics"]["metric"] == "mae", "value"] = np.nan
    shown = [ax for ax in metric_distributions({"m": few}).axes if ax.get_visible()]
    assert [ax.get_title() for ax in shown] == ["pds ↑"]


def test_one_unit_shows_its_value_and_n_without_an_interval() -> None:
    tables = _tables(0, n_perts=4)
    tables["metrics"] = tables["metrics"][tables["metrics"][PERTURBATION] == "P00"]
    tables["summary"]["n"] = 1
    page = render_report({"m": tables}, title="one")
    summary = page.split('id="summary"', 1)[1].split("</table>", 1)[0]
    assert "n=1" in summary and "[" not in summary
