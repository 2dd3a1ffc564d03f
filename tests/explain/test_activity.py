"""celltwin.explain.activity: decoupler's methods over DoRothEA, PROGENy or a user's net (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import stats

pytest.importorskip("decoupler")

from celltwin._settings import shared_dir
from celltwin.explain import Activity, activity

SHARED = shared_dir()


@pytest.fixture(scope="module")
def world(signed_world):
    """Random effects (3 conditions) and a random signed net; source S0's targets shifted up."""

    def make(seed: int = 0, n_genes: int = 300, n_sources: int = 6, size: int = 20):
        net, effects = signed_world(seed, n_genes, n_sources, size)
        s0 = net[net["source"] == "S0"]
        effects.loc["a", s0["target"]] += 3.0 * s0["weight"].to_numpy()
        return effects, net

    return make


def test_ulm_equals_linregress_t_values(world) -> None:
    effects, net = world()
    result = activity(effects, net=net, min_size=5)
    for source in result.scores.columns:
        edges = net[net["source"] == source].set_index("target")["weight"]
        x = edges.reindex(effects.columns, fill_value=0.0).to_numpy()
        for cond in effects.index:
            fit = stats.linregress(x, effects.loc[cond].to_numpy())
            assert result.scores.loc[cond, source] == pytest.approx(
                fit.slope / fit.stderr, abs=1e-10, rel=1e-10
            )


@pytest.mark.parametrize("method", ["ulm", "mlm", "viper"])
def test_shifted_source_scores_highest(method: str, world) -> None:
    effects, net = world(seed=1)
    result = activity(effects, net=net, method=method)
    assert isinstance(result, Activity)
    assert result.scores.loc["a"].idxmax() == "S0"
    assert result.pvalues.shape == result.scores.shape
    assert result.method == method and result.net == "custom"


def test_series_and_anndata_inputs_agree_with_frame(world) -> None:
    effects, net = world(seed=2)
    frame = activity(effects, net=net).scores
    series = activity(effects.loc["b"], net=net).scores
    np.testing.assert_allclose(series.iloc[0], frame.loc["b"], atol=1e-12)
    adata = AnnData(np.zeros(effects.shape), layers={"delta": effects.to_numpy()})
    adata.obs_names, adata.var_names = list(effects.index), list(effects.columns)
    np.testing.assert_allclose(activity(adata, net=net).scores, frame, atol=1e-12)


def test_dropped_sources_reported(world) -> None:
    effects, net = world(seed=3)
    small = pd.DataFrame({"source": "TINY", "target": ["G1", "G2", "NOT_MEASURED"], "weight": 1.0})
    result = activity(effects, net=pd.concat([net, small]), min_size=5)
    assert "TINY" not in result.scores.columns
    assert result.dropped.loc["TINY", "reason"] == "fewer than min_size=5 measured targets (2 of 3)"
    assert result.sizes.loc["S0"] == 20
    assert "6 source(s) scored, 1 dropped" in result.summary()


def test_bad_inputs_refused(world) -> None:
    effects, net = world(seed=4)
    with pytest.raises(ValueError, match=r"unknown net 'nope'.*dorothea"):
        activity(effects, net="nope")
    with pytest.raises(ValueError, match=r"unknown method 'gsea'.*ulm"):
        activity(effects, net=net, method="gsea")
    with pytest.raises(ValueError, match="missing column"):
        activity(effects, net=net.rename(columns={"weight": "mor"}))
    other = effects.set_axis([f"X{i}" for i in range(effects.shape[1])], axis=1)
    with pytest.raises(ValueError, match=r"no gene of the effects is a target.*same gene"):
        activity(other, net=net)
    with pytest.raises(ValueError, match="every source"):
        activity(effects, net=net, min_size=1000)
    with pytest.raises(ValueError, match="NaN"):
        activity(effects.assign(G0=np.nan), net=net)
    with pytest.raises(TypeError, match="genes-indexed"):
        activity([1.0, 2.0], net=net)  # type: ignore[arg-type]


@pytest.mark.skipif(not (SHARED / "priors").is_dir(), reason="../shared priors not present")
@pytest.mark.parametrize("net", ["dorothea", "progeny"])
def test_shared_priors_load_and_score(net: str) -> None:
    from celltwin import priors

    genes = sorted(set(priors.read_dorothea()["target"]) | set(priors.read_progeny()["gene"]))[
        :2000
    ]
    effect = pd.Series(np.random.default_rng(0).normal(size=len(genes)), index=genes)
    result = activity(effect, net=net)
    assert result.net == net and result.scores.shape[1] == len(result.sizes) > 0
    assert (result.sizes >= 5).all()
    assert len(result.scores.columns) + len(result.dropped) > 0


_PAPALEXI = SHARED / "data" / "papalexi2021_thp1_subset.h5ad"


@pytest.mark.skipif(not _PAPALEXI.is_file(), reason=f"shared Papalexi file not at {_PAPALEXI}")
def test_papalexi_interferon_knockouts_lower_jak_stat(tmp_path: Path) -> None:
    from celltwin import data, pp

    cells = data.load("papalexi2021_subset", cache_dir=tmp_path, progress=False)
    bulk = pp.pseudobulk(cells)
    kos = bulk[bulk.obs["perturbation"].isin(["IFNGR1", "IFNGR2", "JAK2", "STAT1"])]
    result = activity(kos, net="progeny")  # effects from layers['delta'] (KO minus control)
    assert (result.scores["JAK-STAT"] < -5).all(), result.scores["JAK-STAT"]
    # The JAK-STAT pathway is each knockout's most affected pathway.
    assert (result.scores.abs().idxmax(axis=1) == "JAK-STAT").all()


def test_missing_decoupler_names_the_extra(monkeypatch: pytest.MonkeyPatch, world) -> None:
    import sys

    effects, net = world(seed=5)
    monkeypatch.setitem(sys.modules, "decoupler", None)  # import decoupler now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'celltwin\[explain\]'"):
        activity(effects, net=net)


@pytest.mark.skipif(not (SHARED / "priors").is_dir(), reason="../shared priors not present")
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # decoupler's own log10(0)
def test_viper_failure_on_progeny_is_explained() -> None:
    from celltwin import priors

    genes = sorted(set(priors.read_progeny(top=500)["gene"]))[:3000]
    effect = pd.Series(np.random.default_rng(0).normal(size=len(genes)), index=genes)
    try:
        activity(effect, net="progeny", method="viper")
    except ValueError as err:  # decoupler 2.2 fails here; if a later version does not, fine
        assert "use method='ulm' or 'mlm'" in str(err)
