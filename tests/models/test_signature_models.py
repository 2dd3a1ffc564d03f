"""Signature models: hand-computed values, low-rank recovery, NaN handling, registry, save/load."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.eval._metrics import spearman
from celltwin.models import (
    MODELS,
    ContextTransferLinear,
    LowRankSignatures,
    MeanOtherContexts,
    ModelFormatError,
    ModelSpec,
    NotFittedError,
    SignatureModel,
    UnseenConditionError,
    available,
    get_model,
    load,
    register_model,
)
from celltwin.models._signature_data import scores_data

BASELINES = [
    "mean_other_contexts",
    "mean_other_perturbations",
    "low_rank",
    "context_transfer_linear",
]


def scores_of(rows: dict[tuple[str, str], list[float]], genes: list[str] | None = None) -> AnnData:
    """Score AnnData from {(context, perturbation): scores}."""
    keys = list(rows)
    x = np.array([rows[k] for k in keys], dtype=np.float32)
    genes = genes or [f"g{j}" for j in range(x.shape[1])]
    obs = pd.DataFrame(keys, columns=[CONTEXT, PERTURBATION])
    obs.index = [f"{c}/{p}" for c, p in keys]
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=genes))


def planted(seed: int = 1, *, n_ctx: int = 3, n_pert: int = 60, n_genes: int = 150, rank: int = 3):
    """score[c, p] = mu[c] + U[p] W[c] + noise, a fifth of the perturbations hidden in context c0."""
    rng = np.random.default_rng(seed)
    u = rng.normal(size=(n_pert, rank))
    w = rng.normal(size=(n_ctx, rank, n_genes))
    mu = 0.5 * rng.normal(size=(n_ctx, n_genes))
    tensor = mu[:, None, :] + np.einsum("pr,crg->cpg", u, w)
    tensor += 0.3 * rng.normal(size=tensor.shape)
    test = rng.choice(n_pert, n_pert // 5, replace=False)
    rows = {
        (f"c{c}", f"p{p}"): tensor[c, p].tolist()
        for c in range(n_ctx)
        for p in range(n_pert)
        if not (c == 0 and p in test)
    }
    return scores_of(rows), [("c0", f"p{p}") for p in test], tensor[0, test]


# --- values against hand computation ------------------------------------------------------------


def test_mean_other_contexts_hand_values() -> None:
    train = scores_of(
        {
            ("A", "p"): [1.0, 2.0, 3.0],
            ("B", "p"): [3.0, np.nan, 5.0],
            ("A", "q"): [9.0, 9.0, 9.0],
            ("C", "q"): [-9.0, -9.0, -9.0],
        }
    )
    model = get_model("mean_other_contexts").fit(train)
    pred = model.predict(conditions=[("C", "p"), ("A", "p"), ("D", "p"), ("B", "q")])
    expected = [[2.0, 2.0, 4.0], [3.0, 0.0, 5.0], [2.0, 2.0, 4.0], [0.0, 0.0, 0.0]]
    np.testing.assert_allclose(pred.X, expected)
    assert list(pred.var_names) == ["g0", "g1", "g2"]
    assert pred.obs[CONTEXT].tolist() == ["C", "A", "D", "B"]
    assert pred.uns["celltwin"]["prediction"]["model"] == "mean_other_contexts"


def test_mean_other_perturbations_hand_values() -> None:
    train = scores_of(
        {
            ("A", "p1"): [1.0, 0.0, 0.0],
            ("A", "p2"): [0.0, 1.0, np.nan],
            ("A", "p3"): [0.0, 0.0, 1.0],
            ("B", "p1"): [5.0, 5.0, 5.0],
        }
    )
    model = get_model("mean_other_perturbations").fit(train)
    pred = model.predict(conditions=[("A", "new"), ("A", "p1"), ("B", "p2")])
    np.testing.assert_allclose(
        pred.X, [[1 / 3, 1 / 3, 1 / 2], [0.0, 0.5, 1.0], [5.0, 5.0, 5.0]], rtol=1e-6
    )


def test_context_transfer_linear_matches_primal_ridge() -> None:
    """Without the identity prior it is ridge regression y = mu_y + (x - mu_x) B (primal form)."""
    rng = np.random.default_rng(0)
    n, g = 8, 5
    x, y = rng.normal(size=(n, g)), rng.normal(size=(n, g))
    query = rng.normal(size=g)
    rows = {("S", f"q{i}"): x[i].tolist() for i in range(n)}
    rows |= {("T", f"q{i}"): y[i].tolist() for i in range(n)}
    rows[("S", "new")] = query.tolist()
    a = 0.7
    model = ContextTransferLinear(alphas=(a,), identity_prior=False).fit(scores_of(rows))
    pred = model.predict(conditions=[("T", "new")]).X[0]

    xs, ys = x.astype(np.float32).astype(float), y.astype(np.float32).astype(float)
    xc, yc = xs - xs.mean(0), ys - ys.mean(0)
    alpha = a * np.mean(np.sum(xc**2, axis=1))
    b = np.linalg.solve(xc.T @ xc + alpha * np.eye(g), xc.T @ yc)
    q = query.astype(np.float32).astype(float)
    expected = ys.mean(0) + (q - xs.mean(0)) @ b
    np.testing.assert_allclose(pred, expected, rtol=1e-4, atol=1e-5)


def test_context_transfer_linear_identity_prior_recovers_scaled_copy() -> None:
    """Targets that are exactly 0.5 x source + an offset are predicted exactly."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(10, 30))
    offset = rng.normal(size=30)
    rows = {("S", f"q{i}"): x[i].tolist() for i in range(10)}
    rows |= {("T", f"q{i}"): (0.5 * x[i] + offset).tolist() for i in range(8)}  # q8, q9 hidden
    model = get_model("context_transfer_linear").fit(scores_of(rows))
    pred = model.predict(conditions=[("T", "q8"), ("T", "q9")]).X
    np.testing.assert_allclose(pred, 0.5 * x[8:] + offset, atol=1e-4)


def test_context_transfer_linear_uses_only_measured_sources() -> None:
    """A perturbation measured in one source is predicted from examples measured in that source."""
    rows = {
        ("S1", "a"): [1.0, 0.0],
        ("S1", "b"): [0.0, 1.0],
        ("S1", "c"): [1.0, 1.0],
        ("T", "a"): [2.0, 0.0],
        ("T", "b"): [0.0, 2.0],
        ("S2", "a"): [5.0, 5.0],
    }
    model = get_model("context_transfer_linear", min_examples=2).fit(scores_of(rows))
    pred = model.predict(conditions=[("T", "c")]).X[0]
    # Examples a, b (measured in T and S1): y = 2 x exactly, so c -> (2, 2).
    np.testing.assert_allclose(pred, [2.0, 2.0], atol=1e-5)
    # S2 from sources S1 and T: only 'a' is measured in all three, one example is too few.
    with pytest.raises(UnseenConditionError, match="only 1 perturbation"):
        model.predict(conditions=[("S2", "b")])


# --- low rank --------------------------------------------------------------------------------------


def test_low_rank_recovers_planted_tensor_better_than_means() -> None:
    train, conditions, truth = planted()
    errors, rhos = {}, {}
    for name in ("mean_other_contexts", "mean_other_perturbations", "low_rank"):
        pred = get_model(name).fit(train).predict(conditions=conditions).X
        errors[name] = float(np.mean((pred - truth) ** 2))
        rhos[name] = float(np.nanmean(spearman(pred, truth)))
    assert errors["low_rank"] < 0.25 * min(
        errors["mean_other_contexts"], errors["mean_other_perturbations"]
    )
    assert (
        rhos["low_rank"] > 0.9 > max(rhos["mean_other_contexts"], rhos["mean_other_perturbations"])
    )


def test_low_rank_chooses_rank_by_internal_validation() -> None:
    train, conditions, truth = planted(seed=2)
    model = LowRankSignatures(ranks=(1, 2, 3, 4, 8, 16), ridges=(0.01, 0.1)).fit(train)
    assert 3 <= model.rank_ <= 4  # the planted rank (noise may let one extra dimension in)
    assert len(model.validation_) == 12
    best = min(model.validation_, key=lambda r: r["error"])
    assert (best["rank"], best["ridge"]) == (model.rank_, model.ridge_)
    assert model.factors_.shape == (60, model.rank_)
    assert model.maps_.shape == (3, model.rank_, 150)
    # A fixed rank skips validation.
    fixed = LowRankSignatures(rank=3, ridge=0.05).fit(train)
    assert fixed.validation_ == [] and fixed.rank_ == 3
    pred = fixed.predict(conditions=conditions).X
    assert np.mean((pred - truth) ** 2) < 0.2


def test_low_rank_validation_never_hides_a_perturbations_only_rows() -> None:
    train, _, _ = planted(seed=3)
    model = LowRankSignatures(validation_fraction=0.5)
    data = scores_data(train, where="test")
    hidden = model._validation_rows(data)
    rows = np.concatenate(
        [np.flatnonzero(data.row_context == c)[mask] for c, mask in hidden.items()]
    )
    perts = data.row_perturbation[rows]
    assert len(set(perts)) == len(perts)  # at most one hidden row per perturbation
    n_measured = (data.index >= 0).sum(axis=0)
    assert (n_measured[perts] >= 2).all()  # every hidden perturbation keeps another context


# --- contract -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BASELINES)
def test_nan_scores_give_finite_predictions(name: str) -> None:
    train, conditions, _ = planted(n_pert=20, n_genes=40)
    x = np.array(train.X)
    x[np.random.default_rng(0).random(x.shape) < 0.3] = np.nan
    x[:, 0] = np.nan  # a gene measured nowhere
    train.X = x
    pred = get_model(name).fit(train).predict(conditions=conditions[:3])
    assert pred.shape == (3, 40) and np.isfinite(pred.X).all()


@pytest.mark.parametrize("name", BASELINES)
def test_save_load_round_trip(name: str, tmp_path) -> None:
    train, conditions, _ = planted(n_pert=20, n_genes=30)
    model = get_model(name).fit(train)
    model.save(tmp_path / name)
    same = load(tmp_path / name)
    assert type(same) is type(model)
    np.testing.assert_array_equal(
        same.predict(conditions=conditions).X, model.predict(conditions=conditions).X
    )
    assert type(model).load(tmp_path / name).genes_ == model.genes_
    meta = json.loads((tmp_path / name / "model.json").read_text())
    assert meta["format"] == "celltwin.model" and meta["model"] == name
    assert meta["predicts"] == "signatures"


def test_load_rejects_damage_and_wrong_class(tmp_path) -> None:
    train, _, _ = planted(n_pert=10, n_genes=20)
    get_model("mean_other_contexts").fit(train).save(tmp_path / "m")
    with pytest.raises(ModelFormatError, match="not a 'LowRankSignatures'"):
        LowRankSignatures.load(tmp_path / "m")
    weights = tmp_path / "m" / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(ModelFormatError, match="checksum"):
        load(tmp_path / "m")
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent")


def test_unseen_and_unfitted_are_refused() -> None:
    train = scores_of({("A", "p"): [1.0, 2.0], ("A", "q"): [0.0, 1.0], ("B", "q"): [1.0, 1.0]})
    with pytest.raises(NotFittedError):
        MeanOtherContexts().predict(conditions=[("A", "p")])
    with pytest.raises(UnseenConditionError, match="no other context"):
        get_model("mean_other_contexts").fit(train).predict(conditions=[("A", "p")])
    with pytest.raises(UnseenConditionError, match="no training signatures"):
        get_model("mean_other_perturbations").fit(train).predict(conditions=[("C", "p")])
    with pytest.raises(UnseenConditionError, match="no training signature at all"):
        get_model("low_rank").fit(train).predict(conditions=[("A", "zz")])


def test_fit_validates_its_input() -> None:
    train = scores_of({("A", "p"): [1.0, 2.0], ("A", "q"): [0.0, 1.0]})
    dup = AnnData(
        X=np.zeros((2, 2), np.float32),
        obs=pd.DataFrame({CONTEXT: ["A", "A"], PERTURBATION: ["p", "p"]}, index=["a", "b"]),
    )
    with pytest.raises(ValueError, match="unique"):
        MeanOtherContexts().fit(dup)
    with pytest.raises(KeyError, match="context"):
        MeanOtherContexts().fit(AnnData(X=np.zeros((1, 2))))
    bad = train.copy()
    bad.X = np.array([[np.inf, 0.0], [0.0, 0.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="infinite"):
        MeanOtherContexts().fit(bad)
    with pytest.raises(ValueError, match="alphas"):
        ContextTransferLinear(alphas=(0.0,)).fit(train)


def test_registry_is_data() -> None:
    table = available()
    signatures = table[table["predicts"] == "signatures"]
    # The classical models, then the blend (tests/models/test_signature_blend.py) and the
    # learned one (tests/models/test_signature_factor.py).
    assert list(signatures.index) == [*BASELINES, "signature_blend", "signature_factor"]
    assert {"description", "reference", "class"} <= set(table.columns)
    assert all(MODELS[n].cls.name == n for n in BASELINES)
    assert all(issubclass(MODELS[n].cls, SignatureModel) for n in signatures.index)
    with pytest.raises(KeyError, match="no model named 'nope'"):
        get_model("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_model(MODELS["low_rank"])
    with pytest.raises(ValueError, match="must agree"):
        ModelSpec(
            name="other", cls=MeanOtherContexts, description="", reference="", predicts="signatures"
        )
    with pytest.raises(ValueError, match="must agree"):
        ModelSpec("mean_other_contexts", MeanOtherContexts, "", "", predicts="cells")
