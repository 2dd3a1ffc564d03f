"""Issue 16 ("First contact"): the command line refuses to replace outputs without --force,
prints expected failures as one clear line (exit 2, no traceback unless --debug), speaks CLI
words in its hints and exits 1 from `info` when the file has errors."""

from __future__ import annotations

import json
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from celltwin.cli import app
from celltwin.cli._errors import cli_words
from celltwin.simulate import simulate
from celltwin.split import split_contexts

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """A split file, a fitted `mean` model, and truth files (good and all-zero)."""
    root = tmp_path_factory.mktemp("first_contact")
    adata = simulate(
        n_genes=20,
        n_tfs=4,
        contexts=("A", "B"),
        n_perturbations=3,
        combinations=1,
        cells_per_condition=8,
        seed=1,
    ).adata
    split_contexts(adata, test="B")
    adata.write_h5ad(root / "split.h5ad")
    zero = adata.copy()
    zero.X = np.zeros(zero.shape, dtype=np.float32)
    zero.write_h5ad(root / "zero.h5ad")
    bad = adata.copy()
    bad.X = np.asarray(bad.X.todense() if hasattr(bad.X, "todense") else bad.X, dtype=np.float32)
    bad.X[0, 0] = np.nan
    bad.write_h5ad(root / "nan.h5ad")
    n = 12
    obs = pd.DataFrame(
        {"batch": ["b1", "b2"] * 6, "knockout": ["NT"] * 4 + ["TP53"] * 4 + ["MYC"] * 4},
        index=[f"c{i}" for i in range(n)],
    )
    unknown = ad.AnnData(np.ones((n, 5), dtype=np.float32), obs=obs)
    unknown.var_names = [f"G{i}" for i in range(5)]
    unknown.write_h5ad(root / "unknown.h5ad")
    # Guide-level labels: two guides per gene and several non-targeting guides.
    guide_labels = ["NTg1", "NTg2", "NTg3", "TP53g1", "TP53g2", "MYCg1", "MYCg2", "NTg1"] * 2
    guides = ad.AnnData(
        np.full((16, 5), 0.5, dtype=np.float32),
        obs=pd.DataFrame({"guide": guide_labels}, index=[f"g{i}" for i in range(16)]),
    )
    guides.var_names = ["TP53", "MYC", "G2", "G3", "G4"]
    guides.write_h5ad(root / "guides.h5ad")
    model = root / "model"
    result = runner.invoke(
        app, ["fit", str(root / "split.h5ad"), "--out", str(model), "--model", "mean"]
    )
    assert result.exit_code == 0, result.output
    return {
        "root": root,
        "split": root / "split.h5ad",
        "zero": root / "zero.h5ad",
        "nan": root / "nan.h5ad",
        "model": model,
        "unknown": root / "unknown.h5ad",
        "guides": root / "guides.h5ad",
    }


def _snapshot(path: Path) -> dict[str, bytes] | None:
    if not path.exists():
        return None
    if path.is_file():
        return {"": path.read_bytes()}
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def _tampered_model(files: dict[str, Path], tmp: Path) -> Path:
    import shutil

    target = tmp / "tampered"
    shutil.copytree(files["model"], target)
    meta = json.loads((target / "model.json").read_text())
    genes = meta["genes"]
    genes[0], genes[1] = genes[1], genes[0]
    (target / "model.json").write_text(json.dumps(meta, indent=1))
    return target


def _non_empty(tmp: Path, name: str) -> Path:
    folder = tmp / name
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    return folder


def _existing_file(tmp: Path, name: str) -> Path:
    path = tmp / name
    path.write_text("mine")
    return path


# Each case: (arguments, the output path that must stay as it was, exit code, message parts).
CASES = {
    "fit onto an existing model": lambda f, t: (
        ["fit", str(f["split"]), "--model", "mean", "--out", str(t / "m")],
        _copy_model(f, t / "m"),
        2,
        ["model folder", str(t / "m"), "--force"],
    ),
    "fit onto a non-empty folder": lambda f, t: (
        ["fit", str(f["split"]), "--model", "mean", "--out", str(_non_empty(t, "d"))],
        t / "d",
        2,
        ["exists and is not empty", "--force"],
    ),
    "predict onto an existing file": lambda f, t: (
        [
            "predict",
            str(f["model"]),
            "--data",
            str(f["split"]),
            "--out",
            str(_existing_file(t, "p.h5ad")),
        ],
        t / "p.h5ad",
        2,
        ["prediction file", "--force"],
    ),
    "predict with a tampered model.json": lambda f, t: (
        [
            "predict",
            str(_tampered_model(f, t)),
            "--data",
            str(f["split"]),
            "--out",
            str(t / "p.h5ad"),
        ],
        t / "p.h5ad",
        2,
        ["does not match its checksum", "edited by hand"],
    ),
    "evaluate an all-zero truth": lambda f, t: (
        ["evaluate", "--truth", str(f["zero"]), "--pred", str(f["split"]), "--out", str(t / "ev")],
        t / "ev",
        2,
        ["truth holds no expression", "truth.X"],
    ),
    "evaluate onto a non-empty folder": lambda f, t: (
        [
            "evaluate",
            "--truth",
            str(f["split"]),
            "--pred",
            str(f["split"]),
            "--out",
            str(_non_empty(t, "ev")),
        ],
        t / "ev",
        2,
        ["evaluation folder", "--force"],
    ),
    "evaluate a missing file": lambda f, t: (
        [
            "evaluate",
            "--truth",
            str(t / "nope.h5ad"),
            "--pred",
            str(f["split"]),
            "--out",
            str(t / "ev"),
        ],
        t / "ev",
        2,
        ["nope.h5ad"],
    ),
    "benchmark without a suite": lambda f, t: (
        ["benchmark", "--out", str(t / "b")],
        t / "b",
        2,
        ["benchmark --list"],
    ),
    "prepare onto an existing file": lambda f, t: (
        ["prepare", str(f["split"]), "--out", str(_existing_file(t, "prepared.h5ad"))],
        t / "prepared.h5ad",
        2,
        ["output file", "--force"],
    ),
    "split onto an existing file": lambda f, t: (
        ["split", str(f["split"]), "--out", str(_existing_file(t, "s.h5ad")), "--test", "B"],
        t / "s.h5ad",
        2,
        ["output file", "--force"],
    ),
    "prepare a file of unknown layout": lambda f, t: (
        ["prepare", str(f["unknown"]), "--out", str(t / "u.h5ad")],
        t / "u.h5ad",
        2,
        ["--perturbation-key knockout", "--control-label"],
    ),
    "prepare guide-level data with one control guide": lambda f, t: (
        [
            "prepare",
            str(f["guides"]),
            "--out",
            str(t / "guides.canonical.h5ad"),
            "--perturbation-key",
            "guide",
            "--control-label",
            "NTg1",
            "--context",
            "K562",
        ],
        t / "guides.canonical.h5ad",
        2,
        ["--control-label"],
    ),
    "info finds errors": lambda f, t: (
        ["info", str(f["nan"])],
        t / "nothing",
        1,
        ["error"],
    ),
}


def _copy_model(files: dict[str, Path], target: Path) -> Path:
    import shutil

    shutil.copytree(files["model"], target)
    return target


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_catalogue(files, tmp_path: Path, case: str) -> None:
    args, output, code, parts = CASES[case](files, tmp_path)
    before = _snapshot(output)
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for part in parts:
        assert part in result.output, (part, result.output)
    if code == 2:
        assert result.output.startswith("error: ") or "\nerror: " in result.output
        assert "=True" not in result.output and "celltwin.io.read(" not in result.output
        assert "_keys" not in result.output  # hints in CLI words, no private modules
        assert "Python:" not in result.output
    assert _snapshot(output) == before  # nothing written or replaced


def test_force_replaces_an_existing_model(files, tmp_path: Path) -> None:
    out = _non_empty(tmp_path, "m")
    args = ["fit", str(files["split"]), "--model", "mean", "--out", str(out), "--force"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "model.json").is_file()
    pred = tmp_path / "p.h5ad"
    pred.write_text("old")
    args = ["predict", str(out), "--data", str(files["split"]), "--out", str(pred), "--force"]
    assert runner.invoke(app, args).exit_code == 0
    assert pred.stat().st_size > 3


def test_debug_shows_the_traceback(files, tmp_path: Path) -> None:
    out = _non_empty(tmp_path, "m")
    args = ["fit", str(files["split"]), "--model", "mean", "--out", str(out)]
    result = runner.invoke(app, ["--debug", *args])
    assert result.exit_code != 2
    assert isinstance(result.exception, FileExistsError)
    assert runner.invoke(app, args).exception is None or runner.invoke(app, args).exit_code == 2


def test_unexpected_errors_keep_their_traceback(files, tmp_path: Path, monkeypatch) -> None:
    import celltwin.models

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(celltwin.models, "fit", broken)
    result = runner.invoke(app, ["fit", str(files["split"]), "--out", str(tmp_path / "m")])
    assert isinstance(result.exception, RuntimeError)


def test_unreachable_source_is_one_clear_message(tmp_path: Path, monkeypatch) -> None:
    import socket

    from celltwin.data import _registry
    from celltwin.data._registry import DatasetEntry, Source

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    entry = DatasetEntry(
        name="offline_test",
        kind="anndata",
        description="unreachable",
        citation="none",
        sources=(Source(url=f"http://127.0.0.1:{port}/x.csv", sha256=None, filename="x.csv"),),
        build=lambda paths: None,
        shape=(1, 1),
    )
    monkeypatch.setitem(_registry._REGISTRY, entry.name, entry)
    out = tmp_path / "x.h5ad"
    args = ["data", "fetch", "offline_test", "--out", str(out), "--cache-dir", str(tmp_path / "c")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "could not reach" in result.output and f"127.0.0.1:{port}" in result.output
    assert "put it at" in result.output and "cache" in result.output
    assert len(result.output.splitlines()) < 6
    assert not out.exists()


def test_info_exits_0_with_warnings_only_and_documents_its_exit_codes(files) -> None:
    assert runner.invoke(app, ["info", str(files["split"])]).exit_code == 0
    help_text = runner.invoke(app, ["info", "--help"], env={"COLUMNS": "200"}).output
    assert "Exit code: 0 when" in help_text and "1 when it has errors" in help_text


@pytest.mark.parametrize(
    ("python", "cli"),
    [
        ("Fix: pass overwrite=True to replace it", "Fix: pass --force to replace it"),
        ("or pass allow_missing=True to score", "or pass --allow-missing to score"),
        (
            "e.g. celltwin.io.read(path, perturbation_key='guide', control_label='NT')",
            "e.g. celltwin prepare FILE --out OUT.h5ad --perturbation-key guide --control-label NT",
        ),
        ("pass split_key='split'", "pass --split-key split"),
        ("params such as n_members=3 stay", "params such as n_members=3 stay"),
    ],
)
def test_hints_are_translated_into_flags(python: str, cli: str) -> None:
    assert cli_words(python) == cli


def test_every_option_has_help_and_shows_its_default() -> None:
    import typer.main

    command = typer.main.get_command(app)
    missing = []
    for name, sub in _commands(command):
        for param in sub.params:
            if param.param_type_name == "option" and not getattr(param, "help", None):
                missing.append(f"{name} {param.name}")
    assert not missing, missing
    assert "[default: 0]" in runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "200"}).output


def _commands(command, prefix: str = ""):
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, f"{prefix}{name} ")
        if not hasattr(sub, "commands"):
            yield f"{prefix}{name}", sub


def test_benchmark_list_needs_no_suite() -> None:
    result = runner.invoke(app, ["benchmark", "--list"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "papalexi2021-heldout-ko" in result.output and "papalexi2021_subset" in result.output
    assert "default models:" in result.output and "transition" in result.output
    assert max(map(len, result.output.splitlines())) <= 100


@pytest.mark.parametrize("args", [["data", "list"], ["models"], ["benchmark", "--list"]])
def test_tables_fit_100_columns_and_have_wide_and_csv(args: list[str]) -> None:
    narrow = runner.invoke(app, args, env={"COLUMNS": "100"})
    assert narrow.exit_code == 0, narrow.output
    assert max(map(len, narrow.output.splitlines())) <= 100
    wide = runner.invoke(app, [*args, "--wide"], env={"COLUMNS": "100"})
    assert wide.exit_code == 0 and max(map(len, wide.output.splitlines())) > 100
    csv = runner.invoke(app, [*args, "--format", "csv"])
    assert csv.exit_code == 0 and csv.output.splitlines()[0].startswith("name,")


def test_a_missing_canonical_column_points_to_the_readme_not_a_private_module() -> None:
    from celltwin.split import split_perturbations

    adata = ad.AnnData(np.ones((4, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="The data model") as err:
        split_perturbations(adata, test=["X"])
    assert "_keys" not in str(err.value)


def test_benchmark_refuses_a_non_empty_folder_after_checking_the_suite(tmp_path: Path) -> None:
    out = _non_empty(tmp_path, "bench")
    result = runner.invoke(app, ["benchmark", "sim-doses", "--out", str(out)])
    assert result.exit_code == 2 and "benchmark folder" in result.output
    assert "--force" in result.output and "Traceback" not in result.output
    unknown = runner.invoke(app, ["benchmark", "nope", "--out", str(out)])
    assert unknown.exit_code == 2 and "unknown benchmark suite" in unknown.output
