"""celltwin.screen queries: readers, the up/down sets, DE-built queries and their checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin.eval import rank_sum_test
from celltwin.screen import (
    Query,
    query_from_groups,
    query_from_ranks,
    query_from_scores,
    query_from_sets,
    read_query,
)


def test_scores_give_the_top_positive_and_bottom_negative_genes() -> None:
    q = query_from_scores({"A": 3.0, "B": -2.0, "C": 1.0, "D": -0.5, "E": 0.0}, n_genes=2)
    assert q.up == ("A", "C") and q.down == ("B", "D")
    neg = -q
    assert neg.up == q.down and neg.down == q.up
    assert neg.scores is not None and neg.scores["A"] == -3.0


def test_a_rank_list_gives_centred_scores_and_both_ends() -> None:
    q = query_from_ranks(["A", "B", "C", "D", "E"], n_genes=2)
    assert q.up == ("A", "B") and q.down == ("E", "D")
    assert q.scores is not None
    np.testing.assert_allclose(q.scores.to_numpy(), [1.0, 0.5, 0.0, -0.5, -1.0])


def test_files_of_each_kind(tmp_path: Path) -> None:
    (tmp_path / "s.csv").write_text("gene,score\nA,2\nB,-1\nC,0.5\n")
    (tmp_path / "s.tsv").write_text("A\t2\nB\t-1\n")
    (tmp_path / "r.txt").write_text("A\nB\nC\nD\n")
    (tmp_path / "q.gmt").write_text("my_UP\tdesc\tA\tB\nmy_DN\tdesc\tC\n")
    (tmp_path / "up.txt").write_text("A\nB\n")
    assert read_query(tmp_path / "s.csv", n_genes=1).up == ("A",)
    assert read_query(tmp_path / "s.tsv").down == ("B",)
    assert read_query(tmp_path / "r.txt", n_genes=1).down == ("D",)
    gmt = read_query(tmp_path / "q.gmt")
    assert (gmt.up, gmt.down, gmt.scores) == (("A", "B"), ("C",), None)
    assert query_from_sets(tmp_path / "up.txt", ["C"]).up == ("A", "B")


def test_bad_inputs_say_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="in both 'up' and 'down'"):
        Query(None, up=("A",), down=("A",))
    with pytest.raises(ValueError, match="needs 'scores' or at least one"):
        Query(None)
    with pytest.raises(ValueError, match="duplicated genes"):
        Query(pd.Series([1.0, 2.0], index=["A", "A"]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        Query(pd.Series([1.0, np.nan], index=["A", "B"]))
    with pytest.raises(
        ValueError, match=r"'up' must be a list of gene names or an existing file.*\['STAT1'\]"
    ):
        query_from_sets("STAT1")  # a string is not a list (and not a file here)
    (tmp_path / "bad.gmt").write_text("setA\tdesc\tA\n")
    with pytest.raises(ValueError, match="no gene set named"):
        read_query(tmp_path / "bad.gmt")
    (tmp_path / "bad.csv").write_text("A,x\nB,y\n")
    with pytest.raises(ValueError, match="numeric scores"):
        read_query(tmp_path / "bad.csv")


def test_two_groups_give_the_de_engine_fold_changes_and_significant_sets() -> None:
    rng = np.random.default_rng(0)
    x = rng.poisson(2.0, size=(200, 30)).astype(float)
    x[:100, 0] += 6  # gene 0 up in 'sick'
    x[:100, 1] = 0  # gene 1 down (to zero: an infinite fold change, capped)
    obs = pd.DataFrame({"state": ["sick"] * 100 + ["well"] * 100}, index=list(map(str, range(200))))
    var = pd.DataFrame(index=[f"g{i}" for i in range(30)])
    adata = AnnData(np.log1p(x), obs=obs, var=var)
    q = query_from_groups(adata, key="state", group="sick", reference="well")
    assert q.up[0] == "g0" and q.down[0] == "g1"
    assert q.scores is not None and np.isfinite(q.scores).all()
    de = rank_sum_test(adata.X, adata.obs["state"].to_numpy(), control="well")
    assert q.scores["g0"] == pytest.approx(de.log2_fold_change[0, 0])
    assert set(q.up) | set(q.down) <= set(adata.var_names[de.fdr[0] < 0.05])
    with pytest.raises(ValueError, match=r"'group'='ill' is not a value of obs\['state'\]"):
        query_from_groups(adata, key="state", group="ill", reference="well")
    with pytest.raises(KeyError, match="no column 'status'"):
        query_from_groups(adata, key="status", group="sick", reference="well")
