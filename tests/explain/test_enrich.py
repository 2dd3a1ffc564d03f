"""celltwin.explain.enrichment: hypergeometric over-representation and decoupler's GSEA (issue 19)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from celltwin._settings import shared_dir
from celltwin.explain import Enrichment, enrichment


def _response(seed: int = 0, n_genes: int = 400):
    """Random effects; set UP's genes shifted up and set DOWN's down in condition 'a'."""
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    effects = pd.DataFrame(rng.normal(size=(2, n_genes)), index=["a", "b"], columns=genes)
    sets = {
        "UP": genes[:30],
        "DOWN": genes[30:60],
        "NULL": genes[100:140],
        "TINY": genes[200:203] + ["NOT_MEASURED"] * 5,
    }
    effects.loc["a", sets["UP"]] += 3.0
    effects.loc["a", sets["DOWN"]] -= 3.0
    return effects, sets


def test_ora_pvalues_equal_scipy_hypergeom_by_hand() -> None:
    effects, sets = _response()
    result = enrichment(effects, gene_sets=sets, n_top=50, ranked=False)
    assert isinstance(result, Enrichment) and result.collection == "custom"
    n = effects.shape[1]
    for row in result.ora.itertuples():
        values = effects.loc[row.condition]
        top = values.sort_values(ascending=row.direction == "down", kind="stable").index[:50]
        top = [g for g in top if (values[g] > 0 if row.direction == "up" else values[g] < 0)]
        members = [g for g in dict.fromkeys(sets[row.set]) if g in effects.columns]
        k = len(set(top) & set(members))
        assert (row.overlap, row.set_size, row.selected, row.background) == (
            k,
            len(members),
            len(top),
            n,
        )
        expected = stats.hypergeom(n, len(members), len(top)).sf(k - 1)
        assert row.pvalue == pytest.approx(expected, rel=1e-12, abs=1e-300)
        assert sorted(row.genes.split(",") if row.genes else []) == sorted(set(top) & set(members))


def test_ora_finds_planted_sets_and_bh_matches_scipy() -> None:
    effects, sets = _response(seed=1)
    result = enrichment(effects, gene_sets=sets, n_top=40, ranked=False)
    top = result.top(1)
    hits = top.set_index(["condition", "direction"])["set"]
    assert hits[("a", "up")] == "UP" and hits[("a", "down")] == "DOWN"
    assert "b" not in set(top["condition"])  # nothing planted in b
    for _, group in result.ora.groupby(["condition", "direction"]):
        expected = stats.false_discovery_control(group["pvalue"].to_numpy(), method="bh")
        np.testing.assert_allclose(group["fdr"].to_numpy(), expected, rtol=1e-12)
    # TINY has 3 measured genes < min_size=5: dropped, and said so
    assert list(result.dropped.index) == ["TINY"]
    assert result.dropped.loc["TINY", "measured"] == 3


def test_ranked_test_uses_decoupler_gsea_with_a_real_null() -> None:
    pytest.importorskip("decoupler")
    effects, sets = _response(seed=2)
    result = enrichment(effects, gene_sets=sets, times=200, seed=0)
    ranked = result.ranked.set_index(["condition", "set"])
    assert ranked.loc[("a", "UP"), "nes"] > 1 and ranked.loc[("a", "DOWN"), "nes"] < -1
    assert ranked.loc[("a", "UP"), "fdr"] < 0.05
    # seed 0 must still permute (decoupler 2.2 skips the shuffle when its seed is 0)
    assert ranked.loc[("b", "NULL"), "fdr"] > 0.05
    again = enrichment(effects, gene_sets=sets, times=200, seed=0).ranked
    pd.testing.assert_frame_equal(result.ranked, again)


def test_bad_arguments_name_the_fix() -> None:
    effects, sets = _response()
    with pytest.raises(ValueError, match="unknown gene-set collection 'halmark'"):
        enrichment(effects, gene_sets="halmark")
    with pytest.raises(ValueError, match="n_top must be an integer >= 1"):
        enrichment(effects, gene_sets=sets, n_top=0)
    with pytest.raises(ValueError, match="min_size=5 measured genes"):
        enrichment(effects, gene_sets={"X": ["nope"] * 9})


@pytest.mark.skipif(
    not (shared_dir() / "priors" / "genesets").is_dir(), reason="needs ../shared/priors"
)
def test_hallmark_interferon_response_found_in_an_interferon_like_response() -> None:
    from celltwin.priors import read_gene_sets

    sets = read_gene_sets(name="hallmark")
    genes = sorted({g for v in sets.values() for g in v})
    rng = np.random.default_rng(3)
    effect = pd.Series(rng.normal(scale=0.1, size=len(genes)), index=genes, name="IFN")
    effect[sets["HALLMARK_INTERFERON_GAMMA_RESPONSE"][:60]] += 1.0
    result = enrichment(effect, gene_sets="hallmark", ranked=False)
    first = result.top(1).set_index("direction")["set"]
    assert first["up"] == "HALLMARK_INTERFERON_GAMMA_RESPONSE"
