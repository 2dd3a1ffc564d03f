"""The runner: files and their columns, agreement of the aggregates, determinism, the CLI path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from celltwin.benchmark import get_suite, list_models, parse_options, run_benchmark, suites
from celltwin.benchmark._aggregate import LEADERBOARD_COLUMNS, fold_table
from celltwin.benchmark._folds import TIMING_COLUMNS, UNIT_COLUMNS
from celltwin.benchmark._measure import _status_kb, measure
from celltwin.models import get_spec

SUITE = "sim-doses"
SMOKE = {"smoke": True}
MODELS = ["mean", "nearest_dose"]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("bench")
    board = run_benchmark(
        SUITE,
        models=MODELS,
        folds=["highest", "lowest"],
        out=out,
        seed=3,
        progress=False,
        isolate=False,
        **SMOKE,
    )
    return out, board


def test_writes_the_files_with_their_columns(run) -> None:
    out, _board = run
    table = pd.read_csv(out / "leaderboard.csv")
    assert tuple(table.columns) == LEADERBOARD_COLUMNS
    assert set(table["suite"]) == {SUITE}
    assert set(table["fold"]) == {"highest", "lowest"}
    assert set(table["model"]) == {*MODELS, "ceiling"}
    results = pd.read_csv(out / "results.csv", keep_default_na=False)
    assert tuple(results.columns) == ("suite", *UNIT_COLUMNS)
    timings = pd.read_csv(out / "timings.csv")
    assert tuple(timings.columns) == TIMING_COLUMNS
    assert (timings["status"] == "ok").all()
    assert (timings["peak_rss_mb"] > 0).all() and (timings["total_s"] > 0).all()
    md = (out / "leaderboard.md").read_text()
    assert md.startswith(f"## {SUITE} (v{get_suite(SUITE).version})")
    assert "*ceiling (split-half)*" in md and "mean (baseline)" in md
    assert "Paired comparison" in md
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "nearest_dose (baseline)" in html
    record = json.loads((out / "run.json").read_text())
    assert {"command", "versions", "machine", "timings", "call", "suite"} <= set(record)
    assert record["call"]["seed"] == 3 and record["call"]["options"] == SMOKE
    assert set(record["timings"]["per_fold_s"]) == {"highest", "lowest"}


def test_leaderboard_values_are_fold_means_of_the_units(run) -> None:
    _out, board = run
    results = board.results
    unit = results[(results["model"] == "mean") & (results["metric"] == "mae")]
    expect = unit.groupby("fold")["value"].mean()
    table = board.table.set_index(["fold", "model", "metric"])["value"]
    for fold, value in expect.items():
        assert table[(fold, "mean", "mae")] == pytest.approx(value)
    # Fraction of the ceiling: ceiling / model for an error metric.
    ceiling = table[("highest", "ceiling", "mae")]
    assert table[("highest", "mean", "mae/ceiling")] == pytest.approx(
        ceiling / table[("highest", "mean", "mae")]
    )
    assert table[("highest", "mean", "coverage")] == 1.0
    # The summary's mean over folds and its CI.
    summary = board.summary().set_index(["model", "metric"])
    row = summary.loc[("mean", "mae")]
    assert row["mean"] == pytest.approx(expect.mean())
    assert row["ci_low"] <= row["mean"] <= row["ci_high"]


def test_coverage_counts_refused_units() -> None:
    results = pd.DataFrame(
        {
            "fold": ["f"] * 5,
            "model": ["a", "a", "b", "ceiling", "ceiling"],
            "context": ["X"] * 5,
            "perturbation": ["p", "q", "p", "p", "q"],
            "metric": ["mae"] * 5,
            "value": [1.0, 3.0, 2.0, 0.5, 0.5],
            "category": [""] * 5,
        }
    )
    table = fold_table(results, suite="s").set_index(["model", "metric"])["value"]
    assert table[("a", "coverage")] == 1.0
    assert table[("b", "coverage")] == 0.5
    assert table[("a", "mae")] == 2.0
    assert table[("a", "mae/ceiling")] == pytest.approx(0.25)


def test_same_seed_same_files(run, tmp_path: Path) -> None:
    out, _ = run
    again = tmp_path / "again"
    run_benchmark(
        SUITE,
        models=MODELS,
        folds=["highest", "lowest"],
        out=again,
        seed=3,
        progress=False,
        isolate=False,
        report=False,
        **SMOKE,
    )
    for name in ("leaderboard.csv", "results.csv"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name


def test_isolated_process_matches_in_process(run, tmp_path: Path) -> None:
    """A model fitted in its own process predicts exactly what it predicts in this one."""
    _out, board = run
    iso = run_benchmark(
        SUITE,
        models=["nearest_dose"],
        folds=["highest"],
        out=tmp_path / "iso",
        seed=3,
        progress=False,
        isolate=True,
        report=False,
        **SMOKE,
    )
    timing = iso.timings.iloc[0]
    assert timing["status"] == "ok" and timing["memory_method"] in ("vmhwm_reset", "maxrss")
    assert timing["peak_rss_mb"] > 50  # a whole Python process with numpy and anndata
    mine = iso.results[iso.results["model"] == "nearest_dose"].reset_index(drop=True)
    theirs = board.results[
        (board.results["model"] == "nearest_dose") & (board.results["fold"] == "highest")
    ].reset_index(drop=True)
    pd.testing.assert_frame_equal(mine, theirs)
    assert not any(p.name.startswith(".work-") for p in (tmp_path / "iso").iterdir())


def test_measure_sees_numpy_memory() -> None:
    before = _status_kb("VmRSS")
    with measure() as stats:
        block = np.ones((64, 1024, 1024), dtype=np.uint8)  # 64 MiB, touched
        block[:, 0, 0] = 2
        during = _status_kb("VmRSS")
    if before is not None and during is not None and during - before < 60 * 1024:
        # Under memory pressure the kernel (e.g. DAMON reclaim) can page the block out at once;
        # then no measurement can see it.
        pytest.skip(
            f"the kernel kept only {(during - before) / 1024:.0f} MiB of the block resident"
        )
    assert stats["peak_delta_mb"] >= 60
    assert stats["seconds"] > 0


def test_skips_and_refusals_are_recorded(tmp_path: Path) -> None:
    board = run_benchmark(
        "sim-combinations",
        models=["context_shift", "additive", "mean"],
        folds=["split0"],
        out=tmp_path,
        progress=False,
        isolate=False,
        report=False,
        **SMOKE,
    )
    status = board.timings.set_index("model")
    # context_shift predicts unseen contexts only: skipped with the reason, never run.
    assert status.loc["context_shift", "status"] == "skipped"
    assert "context" in status.loc["context_shift", "reason"]
    # additive predicts combinations of trained singles only: scored on those, the rest refused.
    assert status.loc["additive", "status"] == "partial"
    assert status.loc["additive", "n_refused"] > 0
    table = board.table.set_index(["model", "metric"])["value"]
    assert 0 < table[("additive", "coverage")] < 1 and table[("mean", "coverage")] == 1
    seen2 = board.results[board.results["model"] == "additive"]["category"]
    assert set(seen2) == {"combo_seen2"}
    assert "context_shift: skipped" in board.to_markdown()


def test_model_params_reach_the_model(tmp_path: Path) -> None:
    board = run_benchmark(
        SUITE,
        models=["nearest_dose"],
        folds=["highest"],
        out=tmp_path,
        progress=False,
        isolate=False,
        report=False,
        model_params={"nearest_dose": {"bogus": 1}},
        **SMOKE,
    )
    row = board.timings.iloc[0]
    assert row["status"] == "error" and "bogus" in row["reason"]
    assert "nearest_dose: error" in board.to_markdown()


def test_parse_options() -> None:
    assert parse_options(
        ["smoke=true", "n_folds=3", "holdout_context=RPE1", "n_top_genes=none"]
    ) == {
        "smoke": True,
        "n_folds": 3,
        "holdout_context": "RPE1",
        "n_top_genes": None,
    }
    assert parse_options(['holdout_context=["B", "myeloid"]']) == {
        "holdout_context": ["B", "myeloid"]
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_options(["smoke"])


def test_unknown_option_fold_or_suite_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown option"):
        run_benchmark(SUITE, out=tmp_path, progress=False, colour="red")
    with pytest.raises(ValueError, match="unknown fold"):
        run_benchmark(SUITE, folds=["nope"], out=tmp_path, progress=False, **SMOKE)
    with pytest.raises(KeyError, match="unknown benchmark suite"):
        run_benchmark("nope", out=tmp_path, progress=False)


def test_cli_benchmark_command(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from celltwin.cli._main import app

    if "benchmark" not in {c.name or c.callback.__name__ for c in app.registered_commands}:
        pytest.skip("the `celltwin benchmark` command is not wired into the CLI yet")
    result = CliRunner().invoke(
        app,
        [
            "benchmark",
            SUITE,
            "--models",
            "mean,control",
            "--folds",
            "highest",
            "--out",
            str(tmp_path),
            "--option",
            "smoke=true",
            "--no-isolate",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"## {SUITE}" in result.output
    assert (tmp_path / "leaderboard.csv").exists()
    bad = CliRunner().invoke(app, ["benchmark", "nope", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "unknown benchmark suite" in bad.output


def test_list_models_has_registry_and_suite_models() -> None:
    table = list_models()
    assert {"control", "mean", "linear", "nearest_dose"} <= set(table["name"])
    row = table.set_index("name").loc["nearest_dose"]
    assert row["suites"] == "lincs-doses,sim-doses"  # lincs runs its signature form


# --- peers (other groups' models behind the "peers" extra) -------------------------------------

PEERS = ("state", "scgen")
KANG = "kang2018-heldout-celltype"


def test_peers_run_only_when_asked_for() -> None:
    for suite in suites():
        assert not set(PEERS) & set(suite.models), suite.name
    assert {"context_shift", "transition"} <= set(get_suite(KANG).models)
    table = list_models().set_index("name")
    assert table.loc[list(PEERS), "extra"].tolist() == ["peers", "peers"]
    assert table.loc["nearest_dose", "extra"] == "" and table.loc["nearest_dose", "installed"]


def test_missing_peer_packages_are_reported_as_skipped_with_the_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, *args, **kwargs):  # the peers' packages are "not installed"
        hidden = ("state", "cell_load", "scgen", "scvi")  # with or without the extra installed
        return None if name.split(".")[0] in hidden else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    board = run_benchmark(
        SUITE,
        models=["mean", *PEERS],
        folds=["highest"],
        out=tmp_path,
        progress=False,
        isolate=False,
        report=False,
        **SMOKE,
    )
    status = board.timings.set_index("model")
    assert status.loc["mean", "status"] == "ok"
    for name in PEERS:
        assert status.loc[name, "status"] == "skipped"
        reason = status.loc[name, "reason"]
        assert "'scgen'" in reason and "Fix: pip install 'celltwin[peers]'" in reason
    assert set(board.table["model"]) == {"mean", "ceiling"}
    md = board.to_markdown()
    assert "- state: skipped — state needs the package(s)" in md
    assert pd.read_csv(tmp_path / "timings.csv").set_index("model").loc["scgen", "status"] == (
        "skipped"
    )


def test_suite_settings_reach_the_peers() -> None:
    task = get_suite(KANG).task
    full = task.model_params("state", {})
    assert full["n_threads"] == 1 and full["max_steps"] >= 400
    assert task.model_params("scgen", {}) == {"n_threads": 1}  # scGen's own recipe otherwise
    smoke = task.model_params("state", {"smoke": True})
    assert smoke["max_steps"] < full["max_steps"] and smoke["hidden_dim"] < 128
    # The model_params option overrides one parameter and keeps the suite's others.
    given = task.model_params("state", {"model_params": {"state": {"max_steps": 7}}})
    assert given == {**full, "max_steps": 7}
    assert task.model_params("mean", {}) == {}
    if not get_spec("state").installed:
        pytest.skip("the peers extra is not installed (pip install 'celltwin[peers]')")
    model = task.make_model("state", seed=4, params=full)
    assert model.get_params()["max_steps"] == full["max_steps"] and model.seed == 4


def test_a_stopped_model_process_reports_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning turns a SIGTERM into SystemExit(): the model process must still say so."""
    from celltwin.benchmark import _isolation

    task = get_suite(SUITE).task
    fold = task.fold_data("highest", **SMOKE)
    _isolation.write_fold_inputs(fold, tmp_path)
    out = tmp_path / "mean"
    out.mkdir()
    request = {
        "suite": SUITE,
        "model": "mean",
        "seed": 0,
        "params": {},
        "fit_frames": {},
        "fit_plain": {},
        "inputs": str(tmp_path),
        "out": str(out),
    }
    (out / "request.json").write_text(json.dumps(request))

    def stopped(*args, **kwargs):
        raise SystemExit()

    monkeypatch.setattr(_isolation, "fit_predict", stopped)
    monkeypatch.setattr("sys.argv", ["child", str(out / "request.json")])
    _isolation._child_main()
    stats = json.loads((out / "stats.json").read_text())
    assert stats["error"].startswith("SystemExit") and "SIGTERM" in stats["error"]
