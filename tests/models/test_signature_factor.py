"""signature_factor: learns planted prior structure, out-of-fold base, determinism, save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin._settings import shared_dir
from celltwin.eval._metrics import spearman
from celltwin.models import (
    MODELS,
    ContextTransferLinear,
    ModelFormatError,
    SignatureFactor,
    UnseenConditionError,
    get_model,
    load,
)
from celltwin.models import _signature_factor as sf
from celltwin.models import _signature_priors as priors
from celltwin.models._signature_data import SignatureData

FAST = {"max_epochs": 150, "patience": 30}


def planted(seed: int = 0, *, n_pert: int = 60, n_genes: int = 120):
    """score[c, p] = mu[c] + U[p] W[c] + [c == c0] z[p] A V + noise, a fifth of c0 hidden.

    The ``z[p] A V`` part appears in context ``c0`` only, so the other contexts cannot predict
    it (the ridge transfer misses it) while the prior features ``z`` can.
    """
    rng = np.random.default_rng(seed)
    n_ctx, rank = 3, 3
    u = rng.normal(size=(n_pert, rank))
    w = rng.normal(size=(n_ctx, rank, n_genes))
    z = rng.normal(size=(n_pert, 8))
    specific = z @ rng.normal(size=(8, 3)) @ rng.normal(size=(3, n_genes))
    mu = 0.5 * rng.normal(size=(n_ctx, n_genes))
    tensor = mu[:, None, :] + np.einsum("pr,crg->cpg", u, w)
    tensor[0] += 1.5 * specific
    tensor += 0.3 * rng.normal(size=tensor.shape)
    test = rng.choice(n_pert, n_pert // 5, replace=False)
    keys = [
        (f"c{c}", f"p{p}")
        for c in range(n_ctx)
        for p in range(n_pert)
        if not (c == 0 and p in test)
    ]
    x = np.array([tensor[int(c[1:]), int(p[1:])] for c, p in keys], dtype=np.float32)
    obs = pd.DataFrame(keys, columns=[CONTEXT, PERTURBATION], index=[f"{c}/{p}" for c, p in keys])
    scores = AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(n_genes)]))
    features = {f"p{p}": z[p] for p in range(n_pert)}
    return scores, [("c0", f"p{p}") for p in test], tensor[0, test], features


@pytest.fixture
def planted_prior(monkeypatch):
    """The planted data with its features served as the 'gene' prior."""
    scores, conditions, truth, features = planted()

    def lookup(perturbations):
        known = np.array([p in features for p in perturbations])
        out = np.array([features.get(p, np.zeros(8)) for p in perturbations])
        return out, known

    monkeypatch.setitem(priors._PRIOR_FEATURES, "gene", lookup)
    return scores, conditions, truth


def mean_spearman(pred: AnnData, truth: np.ndarray) -> float:
    return float(np.mean(spearman(np.asarray(pred.X, dtype=np.float64), truth)))


def test_registered_and_exported() -> None:
    assert MODELS["signature_factor"].cls is SignatureFactor
    assert isinstance(get_model("signature_factor", rank=4), SignatureFactor)


def test_learns_planted_prior_structure_better_than_baselines(planted_prior) -> None:
    scores, conditions, truth = planted_prior
    model = get_model("signature_factor", prior="gene", **FAST).fit(scores)
    assert model.prior_ == "gene" and model.epochs_ > 0
    ours = mean_spearman(model.predict(conditions=conditions), truth)
    others = {
        name: mean_spearman(get_model(name).fit(scores).predict(conditions=conditions), truth)
        for name in ("mean_other_perturbations", "context_transfer_linear", "low_rank")
    }
    assert ours > max(others.values()) + 0.05, (ours, others)
    # Without the features the same model has nothing to learn the c0-only part from.
    blind = get_model("signature_factor", prior="none", **FAST).fit(scores)
    assert ours > mean_spearman(blind.predict(conditions=conditions), truth) + 0.05


def test_untrained_module_returns_the_base_prediction(planted_prior) -> None:
    scores, conditions, _ = planted_prior
    model = get_model("signature_factor", prior="gene", **FAST).fit(scores)
    fresh = model._module(model._sizes())  # zero factors, scale and bias; random prior network
    model.weights_ = sf.nn.utils.parameters_to_vector(fresh.parameters()).detach().numpy()
    assert np.abs(model.weights_).max() > 0
    base = ContextTransferLinear().fit(scores).predict(conditions=conditions)
    np.testing.assert_allclose(model.predict(conditions=conditions).X, base.X, rtol=1e-6)


def test_crossfit_never_sees_the_row_it_predicts() -> None:
    scores, _, _, _ = planted(n_pert=30, n_genes=40)
    x = np.asarray(scores.X, dtype=np.float64)
    contexts, perts = scores.obs[CONTEXT], scores.obs[PERTURBATION]
    genes = list(scores.var_names)
    clean = SignatureData.from_pairs(x, contexts, perts, genes)
    oof = sf.crossfit_transfer(clean, x, ContextTransferLinear(), folds=5, seed=3)
    assert np.isfinite(oof).all()
    rng = np.random.default_rng(0)
    for row in rng.choice(x.shape[0], 5, replace=False):
        poisoned = x.copy()
        poisoned[row] = 1e3 * rng.normal(size=x.shape[1])
        data = SignatureData.from_pairs(poisoned, contexts, perts, genes)
        again = sf.crossfit_transfer(data, poisoned, ContextTransferLinear(), folds=5, seed=3)
        np.testing.assert_allclose(again[row], oof[row], rtol=1e-9, atol=1e-9)
        assert not np.allclose(again, oof)  # the poisoned row does inform the other rows


def test_fit_is_deterministic_and_seeded(planted_prior) -> None:
    scores, conditions, _ = planted_prior
    fits = [
        get_model("signature_factor", prior="gene", seed=s, **FAST).fit(scores) for s in (0, 0, 1)
    ]
    preds = [m.predict(conditions=conditions).X for m in fits]
    np.testing.assert_array_equal(preds[0], preds[1])
    assert fits[0].validation_ == fits[1].validation_
    assert not np.array_equal(preds[0], preds[2])


def test_save_load_round_trip(planted_prior, tmp_path) -> None:
    scores, conditions, _ = planted_prior
    model = get_model("signature_factor", prior="gene", **FAST).fit(scores)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "model.json",
        "weights.safetensors",
    ]
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["model"] == "signature_factor" and meta["state"]["prior_"] == "gene"
    again = load(tmp_path / "m")
    assert isinstance(again, SignatureFactor) and again.get_params() == model.get_params()
    # No prior lookup at predict time: the features were saved with the model.
    np.testing.assert_array_equal(
        again.predict(conditions=conditions).X, model.predict(conditions=conditions).X
    )
    assert SignatureFactor.load(tmp_path / "m").epochs_ == model.epochs_


def test_load_refuses_inconsistent_weights(planted_prior, tmp_path) -> None:
    scores, _, _ = planted_prior
    model = get_model("signature_factor", prior="gene", max_epochs=5).fit(scores)
    model.weights_ = model.weights_[:-1]
    model.save(tmp_path / "m")
    with pytest.raises(ModelFormatError, match="weights_"):
        load(tmp_path / "m")


def test_unseen_pairs_and_bad_parameters(planted_prior) -> None:
    scores, _, _ = planted_prior
    model = get_model("signature_factor", prior="none", max_epochs=5).fit(scores)
    assert model.prior_ == "none" and model.features_.shape == (60, 0)
    with pytest.raises(UnseenConditionError, match="signature_factor"):
        model.predict(conditions=[("c0", "never_measured")])
    with pytest.raises(UnseenConditionError, match="no training signatures"):
        model.predict(conditions=[("c9", "p1")])
    with pytest.raises(ValueError, match="'prior'"):
        get_model("signature_factor", prior="protein").fit(scores)
    with pytest.raises(ValueError, match="'rank'"):
        get_model("signature_factor", rank=0).fit(scores)


def test_drug_name_variants_match_the_smiles_table_names() -> None:
    variants = priors._name_variants("Quisinostat (JNJ-26481585) 2HCl")
    assert "quisinostat" in variants and "jnj26481585" in variants
    assert priors._norm("Belinostat") in priors._name_variants("Belinostat (PXD101)")


@pytest.mark.shared
def test_real_priors_cover_the_shared_perturbations() -> None:
    from celltwin.data import load_signatures

    if not (shared_dir() / "data" / "signatures").is_dir():
        pytest.skip(f"shared signatures not found under {shared_dir()} (set CELLTWIN_SHARED)")
    pytest.importorskip("rdkit", reason="drug fingerprints need RDKit (celltwin[chem])")
    drugs = load_signatures("sciplex3", progress=False).perturbations
    source, features, known = priors.prior_features(drugs, prior="auto")
    assert source == "drug" and known.sum() >= 15 and features.shape[0] == len(drugs)
    assert np.allclose(np.linalg.norm(features[known], axis=1), 1.0)
    genes = load_signatures("replogle2022_rpe1", progress=False).perturbations[:40]
    source, features, known = priors.prior_features(genes, prior="auto")
    assert source == "gene" and known.mean() > 0.9 and features.shape == (40, 128)


def test_top_lists_get_the_top_loss(planted_prior) -> None:
    scores, conditions, truth = planted_prior
    model = get_model("signature_factor", prior="gene", **FAST)
    data = SignatureData.from_pairs(
        np.asarray(scores.X, dtype=np.float64),
        scores.obs[CONTEXT],
        scores.obs[PERTURBATION],
        list(scores.var_names),
    )
    assert not model._top_lists(data)  # continuous scores: correlation loss
    # The same rows as top-20 lists (linear-rank scores, 0 below the list).
    x = np.asarray(scores.X, dtype=np.float64)
    ranks = np.argsort(np.argsort(-x, axis=1), axis=1)
    top = np.where(ranks < 20, (20 - ranks) / 20, 0.0)
    lists = AnnData(X=top.astype(np.float32), obs=scores.obs, var=scores.var)
    data = SignatureData.from_pairs(top, scores.obs[CONTEXT], scores.obs[PERTURBATION], data.genes)
    assert model._top_lists(data)
    model.fit(lists)
    base = ContextTransferLinear().fit(lists).predict(conditions=conditions)
    true_top = np.argsort(-truth, axis=1)[:, :20]

    def overlap(pred: AnnData) -> float:
        guess = np.argsort(-np.asarray(pred.X), axis=1)[:, :20]
        return float(
            np.mean([len(set(a) & set(b)) / 20 for a, b in zip(guess, true_top, strict=True)])
        )

    assert overlap(model.predict(conditions=conditions)) > overlap(base)
