"""The screen page (pl.screen_report / write_screen) and the twin figure, from a screen-shaped
result built here from the contract's columns, rendered in headless Chromium."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from test_rendering import _CHECK, _browser, _empty_panels

from celltwin import pl
from celltwin.pl._screen import score_bars, volcano
from celltwin.screen import POPULATION

COLUMNS = (
    "rank",
    "label",
    "perturbation",
    "dose",
    "kind",
    "score",
    "lower",
    "upper",
    "pvalue",
    "fdr",
    "in_domain",
    "prediction_source",
    "top_genes",
)  # the contract


@dataclass
class FakeScreen:
    """What the engine's ScreenResult holds (the contract), without the engine."""

    table: pd.DataFrame
    effects: ad.AnnData
    objective: Any
    context: str
    meta: dict = field(default_factory=dict)
    cells: ad.AnnData | None = None


def _screen(n: int, *, intervals: bool = True, seed: int = 0) -> FakeScreen:
    rng = np.random.default_rng(seed)
    labels = [f"GENE{i:03d}" if i % 7 else f"LONGNAME{i:03d}+PARTNER{i:03d}" for i in range(n)]
    score = np.sort(rng.normal(0, 1, n))[::-1]
    width = rng.uniform(0.1, 0.5, n) if intervals else np.full(n, np.nan)
    p = rng.uniform(0, 1, n)
    table = pd.DataFrame({
        "rank": np.arange(1, n + 1), "label": labels, "perturbation": labels, "dose": "",
        "kind": "predicted", "score": score, "lower": score - width, "upper": score + width,
        "pvalue": p, "fdr": np.minimum(1, p * 2), "in_domain": rng.uniform(0, 1, n),
        "prediction_source": "transferred", "top_genes": "G1;G2;G3;G4;G5",
    })  # fmt: skip
    table.loc[1, "in_domain"] = 0.01  # an extrapolation
    genes = [f"G{j}" for j in range(80)]
    x = rng.normal(0, 0.3, (3, 80)).astype(np.float32)
    half = np.full_like(x, 0.2) if intervals else np.full_like(x, np.nan)
    effects = ad.AnnData(x, obs=pd.DataFrame(index=labels[:3]), var=pd.DataFrame(index=genes),
                         layers={"lower": x - half, "upper": x + half})  # fmt: skip
    objective = SimpleNamespace(name="reverse", direction="lower", null="permuted genes",
                                description="reverse a query signature")  # fmt: skip
    return FakeScreen(table[list(COLUMNS)], effects, objective, "K562",
                      {"model": "transition", "interval": 0.9})  # fmt: skip


def _with_cells(screen: FakeScreen) -> FakeScreen:
    rng = np.random.default_rng(1)
    names = ["sample", "reference", *screen.table["label"].head(3)]
    x = np.vstack([rng.normal(i * 0.3, 1, (40, 80)) for i in range(len(names))])
    obs = pd.DataFrame({POPULATION: np.repeat(names, 40)}, index=[f"c{i}" for i in range(len(x))])
    screen.cells = ad.AnnData(x.astype(np.float32), obs=obs,
                              var=pd.DataFrame(index=screen.effects.var_names))  # fmt: skip
    return screen


def test_page_has_header_table_and_flags():
    screen = _screen(250)
    page = pl.screen_report(screen)
    assert page.startswith("<!DOCTYPE html>")
    assert "reverse (lower is better)" in page and "K562" in page and "permuted genes" in page
    assert "<script src" not in page and "<link" not in page and '<img src="http' not in page
    table = page[page.index('<table id="screen"') :]
    assert table.count("<tr>") == 1 + 200  # header + max_rows
    assert "First 200 of 250 rows" in page
    assert "0.01 (out)" in page  # the extrapolation is flagged beside its score
    assert page.count("<svg") == 2  # bars and the volcano; no populations without cells
    assert "GENE001" in page and "LONGNAME000+PARTNER000" in page and "G1; G2" in page


def test_figures_draw_what_they_say():
    screen = _screen(20)
    bars = score_bars(screen, top=20)
    assert not _empty_panels(bars)
    labels = [t.get_text() for t in bars.axes[0].get_yticklabels()]
    assert labels == list(screen.table["label"])
    assert len(bars.axes[0].patches) == 20
    assert volcano(screen).axes[0].get_ylabel() == "|effect| / sd"
    plain = _screen(20, intervals=False)
    assert volcano(plain).axes[0].get_ylabel() == "|effect| (no intervals)"
    assert "<svg" in pl.screen_report(plain)  # pages without intervals still render


def test_twin_figure_and_write(tmp_path):
    screen = _with_cells(_screen(20))
    fig = pl.twin_figure(screen)
    assert not _empty_panels(fig)
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend[:2] == ["reference", "sample"] and legend[2].endswith("(hit 1)")
    with pytest.raises(ValueError, match="population"):
        pl.twin_figure(_screen(5))
    path = pl.write_screen(screen, tmp_path / "screen.html")
    assert path.read_text(encoding="utf-8").count("<svg") == 3
    with pytest.raises(FileExistsError):
        pl.write_screen(screen, path)
    pl.write_screen(screen, path, overwrite=True)
    with pytest.raises(ValueError, match="empty"):
        pl.screen_report(FakeScreen(screen.table.iloc[:0], screen.effects, screen.objective, "x"))


@pytest.mark.parametrize("n", [20, 200])
def test_page_renders_without_clipped_text(n, tmp_path):
    screen = _with_cells(_screen(n))
    checked = tmp_path / "checked.html"
    checked.write_text(pl.screen_report(screen, top=n) + _CHECK, encoding="utf-8")
    dom = _browser(tmp_path / "profile", "--virtual-time-budget=5000",
                   "--window-size=1280,3000", "--dump-dom", checked.as_uri())  # fmt: skip
    found = re.search(r'<pre id="layout-check">(.*?)</pre>', dom, flags=re.S)
    assert found, "the check did not run"
    report = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert report["n_svg"] == 3
    assert report["outside"] == []
    assert report["wide"] == []


def test_an_engine_screen_result_renders():
    from celltwin.screen import ScreenResult

    fake = _screen(30)
    real = ScreenResult(fake.table, fake.effects, None, fake.objective, fake.context, fake.meta,
                        pd.DataFrame(columns=["label", "perturbation", "dose", "reason"]))  # fmt: skip
    page = pl.screen_report(real)
    assert page.count("<svg") == 2 and "reverse (lower is better)" in page
