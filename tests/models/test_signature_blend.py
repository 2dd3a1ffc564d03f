"""signature_blend: the weight follows what the replayed few-shot task rewards; hand checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin._keys import CONTEXT, PERTURBATION
from celltwin.models import SignatureBlend, get_model
from celltwin.models._signature_blend import rank_metrics, standardise_rows


def _scores(tensor: np.ndarray, few_shot: int) -> tuple[AnnData, list[tuple[str, str]]]:
    """Contexts x perturbations x genes; context c0 keeps only ``few_shot`` perturbations."""
    n_ctx, n_pert, n_genes = tensor.shape
    keys, rows, test = [], [], []
    for c in range(n_ctx):
        for p in range(n_pert):
            if c == 0 and p >= few_shot:
                test.append((f"c{c}", f"p{p}"))
                continue
            keys.append((f"c{c}", f"p{p}"))
            rows.append(tensor[c, p])
    obs = pd.DataFrame(keys, columns=[CONTEXT, PERTURBATION], index=[f"{c}/{p}" for c, p in keys])
    var = pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    return AnnData(X=np.array(rows, dtype=np.float32), obs=obs, var=var), test


def _tensor(seed: int, *, shared: float, mean: float, n_pert: int = 60, n_genes: int = 300):
    """score[c, p] = mean * mu[c] + shared * s[p] + noise: ``shared`` sets how much a
    perturbation's rows agree across contexts, ``mean`` how much each context's rows share."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(3, 1, n_genes))
    s = rng.normal(size=(1, n_pert, n_genes))
    return mean * mu + shared * s + rng.normal(size=(3, n_pert, n_genes))


def test_weight_goes_to_the_transfer_when_perturbations_agree_across_contexts() -> None:
    scores, _ = _scores(_tensor(0, shared=3.0, mean=0.3), few_shot=15)
    model = SignatureBlend().fit(scores)
    assert model.blend_weights()["c0"] >= 0.7


def test_weight_goes_to_the_context_mean_when_only_the_context_is_shared() -> None:
    scores, test = _scores(_tensor(1, shared=0.05, mean=3.0), few_shot=15)
    model = SignatureBlend().fit(scores)
    assert model.blend_weights()["c0"] <= 0.3
    # Predictions are then close to the context mean's ranking.
    pred = model.predict(conditions=test).X
    mean = get_model("mean_other_perturbations").fit(scores).predict(conditions=test).X
    corr = [np.corrcoef(a, b)[0, 1] for a, b in zip(pred, mean, strict=True)]
    assert np.mean(corr) > 0.9


def test_blend_is_never_worse_than_both_parts_on_a_mixed_task() -> None:
    tensor = _tensor(2, shared=1.0, mean=1.5)
    scores, test = _scores(tensor, few_shot=12)
    truth = np.stack([tensor[0, int(p[1:])] for _, p in test])
    metrics = {
        name: np.nanmean(
            rank_metrics(
                get_model(name).fit(scores).predict(conditions=test).X.astype(float), truth
            ),
            axis=0,
        )
        for name in ("signature_blend", "context_transfer_linear", "mean_other_perturbations")
    }
    blend = metrics["signature_blend"].mean()
    assert blend >= min(
        metrics["context_transfer_linear"].mean(), metrics["mean_other_perturbations"].mean()
    )
    assert blend >= 0.98 * max(
        metrics["context_transfer_linear"].mean(), metrics["mean_other_perturbations"].mean()
    )


def test_rank_metrics_hand_values() -> None:
    truth = np.arange(300, dtype=float)[None, :]
    perfect = rank_metrics(truth * 2 + 1, truth)[0]
    np.testing.assert_allclose(perfect, [1.0, 1.0, 1.0, 1.0, 1.0])
    reverse = rank_metrics(-truth, truth)[0]
    np.testing.assert_allclose(reverse, [-1.0, 0.0, 0.0, 0.0, 0.0])
    # A top list (most genes tied at the bottom): no down metrics, Spearman on the listed genes.
    top = np.zeros((1, 300))
    top[0, :60] = np.linspace(1.0, 0.1, 60)
    scored = rank_metrics(top + 0.0, top)[0]
    assert scored[0] == pytest.approx(1.0) and np.isnan(scored[[2, 4]]).all()


def test_standardise_rows_and_parameter_checks() -> None:
    z = standardise_rows(np.array([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    np.testing.assert_allclose(z[0], [-1.224744871, 0.0, 1.224744871])
    np.testing.assert_array_equal(z[1], 0.0)
    scores, _ = _scores(_tensor(3, shared=1.0, mean=1.0, n_pert=10, n_genes=20), few_shot=4)
    with pytest.raises(ValueError, match="'weights'"):
        SignatureBlend(weights=(1.5,)).fit(scores)
    with pytest.raises(ValueError, match="'objective'"):
        SignatureBlend(objective="best").fit(scores)
