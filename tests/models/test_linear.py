"""The linear baseline (Ahlmann-Eltze et al. 2025): agreement with the paper's formula written out
by hand, recovery of a planted low-rank effect structure, and its embedding modes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION, SPLIT, TEST, TRAIN
from celltwin.models import LinearBaseline, MeanBaseline, UnseenConditionError, get_model


def _dense(adata) -> np.ndarray:
    x = adata.X
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _group_means(adata, *, train_only: bool) -> dict[tuple[str, str], np.ndarray]:
    obs = adata.obs.astype(str)
    x = _dense(adata)
    keep = (obs[SPLIT] == TRAIN).to_numpy() if train_only else np.ones(len(obs), bool)
    out = {}
    for (c, p), rows in obs[keep].groupby([CONTEXT, PERTURBATION]).indices.items():
        out[(c, p)] = x[np.flatnonzero(keep)[rows]].mean(axis=0)
    return out


def test_matches_the_papers_formula_written_out(experiment) -> None:
    adata, k, lam = experiment.adata, 6, 0.1
    model = LinearBaseline(n_components=k, ridge=lam).fit(adata)
    assert model.embedding_ == "gene"  # CRISPR knockouts: P = G[target], as in the paper

    means = _group_means(adata, train_only=True)
    perturbed = sorted(key for key in means if key[1] != CONTROL)
    controls = sorted(key for key in means if key[1] == CONTROL)
    # G: prcomp on genes x pseudobulks (perturbed and control), each column centred.
    profiles = np.array([means[key] for key in perturbed + controls]).T
    profiles = profiles - profiles.mean(axis=0)
    u, s, _ = np.linalg.svd(profiles, full_matrices=False)
    g = u[:, :k] * s[:k]
    delta = {key: means[key] - means[(key[0], CONTROL)] for key in perturbed}
    b = {c: np.mean([delta[key] for key in perturbed if key[0] == c], axis=0) for c in ("A", "B")}
    y = np.array([delta[key] - b[key[0]] for key in perturbed]).T
    genes = list(adata.var_names)

    def emb(p: str) -> np.ndarray:
        return sum(g[genes.index(t)] for t in p.split("+"))

    p = np.array([emb(key[1]) for key in perturbed])
    inv = np.linalg.inv
    w = inv(g.T @ g + lam * np.eye(k)) @ g.T @ y @ p @ inv(p.T @ p + lam * np.eye(k))

    conditions = [
        ("A", experiment.seen_single),
        ("B", experiment.held_single),
        ("A", experiment.held_combo),
    ]
    pred = model.predict(adata, conditions=conditions)
    all_means = _group_means(adata, train_only=False)  # predict starts from all query controls
    for row, (c, pert) in enumerate(conditions):
        expected = np.maximum(all_means[(c, CONTROL)] + g @ w @ emb(pert) + b[c], 0)
        np.testing.assert_allclose(pred.X[row], expected, rtol=1e-5, atol=1e-5)


def _planted(make_cells, *, seed: int = 0):
    """Effects of knocking out gene t: 0.4 * F M F[t] (rank 3), for 50 targets; 10 held out.

    F is centred over the 40 training targets, so their mean effect (the model's b) is ~0 and
    the effects minus b are exactly bilinear. M is symmetric and well conditioned: how a gene
    responds to perturbations (its row of G) then determines what perturbing it does, the
    structure the G[target] embedding relies on.
    """
    rng = np.random.default_rng(seed)
    n_genes, rank = 60, 3
    f = rng.standard_normal((n_genes, rank))
    f -= f[:40].mean(axis=0)
    q, _ = np.linalg.qr(rng.standard_normal((rank, rank)))
    m = q @ np.diag([1.0, 0.8, 0.6]) @ q.T
    names = [f"g{i:03d}" for i in range(n_genes)]
    truth = {names[t]: 0.4 * f @ m @ f[t] for t in range(50)}
    held = names[40:50]
    cells = make_cells(
        {("K", t, ""): e for t, e in truth.items()},
        n_genes=n_genes,
        splits={("K", t, ""): TEST for t in held},
        gene_names=names,
        seed=seed,
    )
    return cells, truth, held


def test_recovers_a_planted_low_rank_structure_for_unseen_perturbations(make_cells) -> None:
    cells, truth, held = _planted(make_cells)
    ctrl = _dense(cells)[(cells.obs[PERTURBATION] == CONTROL).to_numpy()].mean(axis=0)
    conditions = [("K", t) for t in held]
    linear = LinearBaseline(n_components=5).fit(cells)
    mean = MeanBaseline().fit(cells)
    pred_linear = linear.predict(cells, conditions=conditions).X - ctrl
    pred_mean = mean.predict(cells, conditions=conditions).X.mean(axis=0) - ctrl  # same for all
    r_linear = [np.corrcoef(pred_linear[i], truth[t])[0, 1] for i, t in enumerate(held)]
    r_mean = [np.corrcoef(pred_mean, truth[t])[0, 1] for t in held]
    assert min(r_linear) > 0.9, r_linear
    assert np.median(r_mean) < 0.5, r_mean
    err_linear = np.mean([(pred_linear[i] - truth[t]) ** 2 for i, t in enumerate(held)])
    err_mean = np.mean([(pred_mean - truth[t]) ** 2 for t in held])
    assert err_linear < 0.1 * err_mean


def test_pca_embedding_predicts_training_conditions_and_refuses_others(make_cells) -> None:
    cells, truth, held = _planted(make_cells)
    ctrl = _dense(cells)[(cells.obs[PERTURBATION] == CONTROL).to_numpy()].mean(axis=0)
    model = LinearBaseline(n_components=5, ridge=1e-6, embedding="pca").fit(cells)
    assert model.condition_embedding_.shape == (40, 5)
    seen = ["g000", "g001", "g017"]
    pred = model.predict(cells, conditions=[("K", t) for t in seen]).X - ctrl
    x, obs = _dense(cells), cells.obs
    for row, t in enumerate(seen):
        observed = x[(obs[PERTURBATION] == t).to_numpy()].mean(axis=0) - ctrl
        r_model = np.corrcoef(pred[row], truth[t])[0, 1]
        r_observed = np.corrcoef(observed, truth[t])[0, 1]
        # A rank-5 fit of rank-3 effects keeps the signal of the training effect it reproduces.
        assert r_model > 0.9 and r_model > r_observed - 0.01, (r_model, r_observed)
    combo = model.predict(cells, conditions=[("K", "g000+g001")]).X[0] - ctrl
    b = model.center_[0]
    gw = model.gene_embedding_ @ model.coef_
    emb = model.condition_embedding_
    np.testing.assert_allclose(combo, gw @ (emb[0] + emb[1]) + b, atol=1e-5)  # sum of embeddings
    with pytest.raises(UnseenConditionError, match="'pca' embeddings exist only"):
        model.predict(cells, conditions=[("K", held[0])])


def test_external_embedding_and_zero_embedding_is_the_mean_baseline(make_cells) -> None:
    rng = np.random.default_rng(2)
    n_genes, names = 30, [f"p{i}" for i in range(25)]
    e = pd.DataFrame(rng.standard_normal((25, 4)), index=names)
    e -= e.iloc[:20].mean()  # centred on the training rows: effects - b are then linear in P
    a = rng.standard_normal((n_genes, 4)) * 0.3
    effects = {("K", p, ""): a @ e.loc[p].to_numpy() for p in names}
    cells = make_cells(
        effects,
        n_genes=n_genes,
        perturbation_type="drug",
        splits={("K", p, ""): TEST for p in names[20:]},
    )
    ctrl = _dense(cells)[(cells.obs[PERTURBATION] == CONTROL).to_numpy()].mean(axis=0)
    e.loc["zero"] = 0.0
    model = LinearBaseline(n_components=8, ridge=0.01).fit(cells, perturbation_features=e)
    assert model.embedding_ == "external"
    pred = model.predict(cells, conditions=[("K", p) for p in names[20:]]).X - ctrl
    for row, p in enumerate(names[20:]):
        assert np.corrcoef(pred[row], effects[("K", p, "")])[0, 1] > 0.95
    # P = 0 leaves b, the mean training effect: the mean baseline's shift.
    zero = model.predict(cells, conditions=[("K", "zero")]).X[0]
    expected = np.maximum(ctrl + MeanBaseline().fit(cells).mean_effect("K"), 0)
    np.testing.assert_allclose(zero, expected, atol=1e-5)
    with pytest.raises(UnseenConditionError, match=r"\['nope'\] have no row"):
        model.predict(cells, conditions=[("K", "nope")])
    # Without an embedding, drugs default to 'pca'.
    assert LinearBaseline().fit(cells).embedding_ == "pca"


def test_gene_mode_leaves_out_targets_that_are_not_genes(make_cells) -> None:
    rng = np.random.default_rng(3)
    effects = {("K", p, ""): rng.normal(0, 0.3, 8) for p in ["g000", "g001", "g002", "OFFLIST"]}
    cells = make_cells(effects, n_genes=8)
    model = LinearBaseline(n_components=3).fit(cells)
    assert model.embedding_ == "gene"
    assert model.dropped_conditions_ == [["K", "OFFLIST", ""]]
    with pytest.raises(UnseenConditionError, match=r"\['OFFLIST'\] are not training genes"):
        model.predict(cells, conditions=[("K", "OFFLIST")])


@pytest.mark.parametrize(
    ("params", "embedding", "message"),
    [
        ({"n_components": 0}, None, "'n_components' must be an integer >= 1"),
        ({"ridge": -1.0}, None, "'ridge' must be a finite number >= 0"),
        ({"embedding": "magic"}, None, "'embedding' must be one of"),
        ({"embedding": "gene"}, "given", "ignores it"),
        ({"embedding": "external"}, None, "needs fit"),
    ],
)
def test_parameters_are_validated_at_fit(params, embedding, message, experiment) -> None:
    table = pd.DataFrame(np.eye(2), index=["x", "y"]) if embedding else None
    model = LinearBaseline(**params)  # __init__ accepts anything, like scikit-learn
    with pytest.raises(ValueError, match=message):
        model.fit(experiment.adata, perturbation_features=table)


@pytest.mark.parametrize("name", ["linear", "nearest_perturbation", "transition"])
def test_every_embedding_model_names_the_same_fit_argument(name, experiment) -> None:
    # One keyword for prior perturbation features across models, named in the error.
    model = get_model(name)
    with pytest.raises(TypeError, match=rf"{name}\.fit: 'perturbation_features' must be a pandas"):
        model.fit(experiment.adata, perturbation_features=[[1.0, 2.0]])
