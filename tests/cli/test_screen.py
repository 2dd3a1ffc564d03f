"""``celltwin screen`` as a newcomer meets it: a worked example in --help, results written,
outputs never replaced without --force, a partial screen resumed, bad inputs as one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from celltwin.cli import app
from celltwin.testing._data import cell_data

runner = CliRunner()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("screen_cli")
    cell_data().adata.write_h5ad(root / "data.h5ad")
    model = root / "model"
    fitted = runner.invoke(
        app, ["fit", str(root / "data.h5ad"), "--out", str(model), "--model", "linear"]
    )
    assert fitted.exit_code == 0, fitted.output
    return {"root": root, "data": root / "data.h5ad", "model": model}


def _screen(files: dict[str, Path], out: Path, *args: str) -> Any:
    base = ["screen", str(files["model"]), "--data", str(files["data"]), "--context", "A"]
    return runner.invoke(app, [*base, "--out", str(out), "--no-progress", *args])


def test_help_shows_a_worked_example() -> None:
    result = runner.invoke(app, ["screen", "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output and "celltwin screen model/" in result.output


def test_a_screen_writes_its_table_and_lists_the_top_hits(files, tmp_path) -> None:
    out = tmp_path / "s"
    result = _screen(files, out, "--genes", "TF02,TF03,TF04,NOPE", "--pairs", "--top", "3")
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "4 refused" in result.output
    table = pd.read_csv(out / "screen.csv")
    assert len(table) == 3 + 3  # singles and pairs; NOPE and its 3 pairs refused
    assert table["score"].is_monotonic_decreasing
    refused = pd.read_csv(out / "refused.csv")
    assert refused["label"].str.contains("NOPE").all() and len(refused) == 4
    assert (out / "effects.h5ad").is_file() and (out / "meta.json").is_file()
    page = (out / "screen.html").read_text()
    assert "<svg" in page and str(table["label"].iloc[0]) in page
    again = _screen(files, out, "--genes", "TF02")
    assert again.exit_code == 2 and "--force" in again.output and "Traceback" not in again.output
    assert _screen(files, out, "--genes", "TF02", "--force").exit_code == 0
    assert len(pd.read_csv(out / "screen.csv")) == 1


def test_a_partial_screen_is_resumed_to_the_full_result(files, tmp_path) -> None:
    args = ["--genes", "TF02,TF03,TF04,TF06", "--pairs", "--batch-size", "3"]
    full = _screen(files, tmp_path / "full", *args)
    assert full.exit_code == 0, full.output
    part = _screen(files, tmp_path / "part", *args, "--time-budget", "1e-9")
    assert part.exit_code == 0 and "budget stopped" in part.output
    assert len(pd.read_csv(tmp_path / "part" / "screen.csv")) == 3
    done = _screen(files, tmp_path / "part", *args, "--resume")
    assert done.exit_code == 0 and "budget stopped" not in done.output
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "part" / "screen.csv"), pd.read_csv(tmp_path / "full" / "screen.csv")
    )


def test_objectives_come_from_the_registry_by_name(files, tmp_path) -> None:
    out = tmp_path / "mimic"
    result = _screen(
        files, out, "--genes", "TF02,TF03,TF04,TF06", "--objective", "mimic",
        "--up-genes", "G001,G002,G003,G004,G005", "--down-genes", "G006,G007,G008,G009,G010",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "screen.csv")
    assert table["score"].is_monotonic_decreasing and table["pvalue"].between(0, 1).all()
    moved = _screen(files, tmp_path / "move", "--genes", "TF02,TF03", "--objective", "move",
                    "--up-genes", "G001")  # fmt: skip
    assert moved.exit_code == 0, moved.output
    bad = _screen(files, tmp_path / "bad", "--genes", "TF02", "--objective", "revers")
    assert bad.exit_code == 2 and "did you mean" in bad.output.lower()


def test_pairs_of_the_top_singles_join_the_screen(files, tmp_path) -> None:
    out = tmp_path / "top"
    result = _screen(files, out, "--genes", "TF02,TF03,TF04,TF06", "--pairs-of-top", "2")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "screen.csv")
    assert len(table) == 5 and table["perturbation"].str.contains("+", regex=False).sum() == 1


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "no candidates"),
        (["--genes", "A", "--all-genes"], "give one of them"),
        (["--drugs", "lib.csv"], "--drugs and --doses go together"),
        (["--genes", "TF02", "--top", "0"], "--top"),
        (["--genes", "TF02", "--time-budget", "0"], "--time-budget 600"),
        (["--genes", "TF02", "--pairs-of-top", "1"], "--pairs-of-top"),
        (["--pairs"], "--pairs pairs the --genes"),
        (["--genes", "TF02", "--objective", "reverse"], "needs a query"),
        (["--genes", "TF02", "--objective", "move"], "needs targets"),
        (["--genes", "TF02", "--objective", "move_population"], "virtual_twin"),
        (["--resume", "--genes", "TF02"], "holds no screen checkpoint"),
        (["--genes-file", "nofile.txt"], "--genes-file"),
        (["--genes", "TF02", "--context", "Z"], "Fix: pass --context A"),
        (["--measured", "nofile.h5ad"], "--measured"),
    ],
)
def test_bad_inputs_are_one_error_line_naming_the_flag(files, tmp_path, args, words) -> None:
    result = _screen(files, tmp_path / "bad", *args)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and words in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "bad" / "screen.csv").exists()


def test_doses_must_be_numbers(files, tmp_path) -> None:
    lib = tmp_path / "lib.csv"
    lib.write_text("aspirin,CC(=O)OC1=CC=CC=C1C(=O)O\n")
    result = _screen(files, tmp_path / "d", "--drugs", str(lib), "--doses", "1,abc")
    assert result.exit_code == 2 and "--doses must be numbers" in result.output


def test_an_unknown_model_folder_is_one_error_line(files, tmp_path) -> None:
    result = runner.invoke(
        app,
        ["screen", str(tmp_path / "nomodel"), "--data", str(files["data"]), "--context", "A",
         "--out", str(tmp_path / "o"), "--genes", "TF02"],
    )  # fmt: skip
    assert result.exit_code == 2 and "error:" in result.output
