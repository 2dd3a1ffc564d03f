"""Context transfer, the task of every signature suite: splits and one fold.

The signatures of some perturbations are hidden in one or more held-out contexts, and models
predict them from everything else (the same perturbations in the other contexts, the other
perturbations in the held-out contexts).

Splits
------
The eligible perturbations (measured in every held-out context and in at least one other
context) are shuffled with ``split_seed`` and cut into ``folds`` chunks. Fold ``k``:

- ``few_shot_fraction=None`` (K-fold): chunk ``k`` is held out, the other chunks' held-out-context
  rows are training examples.
- ``few_shot_fraction=f``: the first ``round(f · n)`` eligible perturbations counting from chunk
  ``k`` are the few-shot training examples in the held-out contexts; all the others are held out
  (the NeurIPS 2023 challenge setting). With ``f = 1/folds`` the few-shot sets partition the
  perturbations.

Held-out rows never reach a model: the training signatures exclude them, and the gene universe
(the columns models see) is the genes ranked by at least one training signature (scores: see
:mod:`._rank_scores`).

Reference row
-------------
Signatures have no cells, so no split-half ceiling exists. Each fold adds rows with model
``reference``: each metric of the *same perturbation measured in a source context* (a context
that is not held out), used as is, averaged over the source contexts that measured it. It is the
"measured elsewhere" yardstick; note that the ``mean_other_contexts`` baseline is the model form
of the same idea (with one source context, as for K562 -> RPE1, the two coincide), so a model
must beat it to show it learned anything about how contexts differ.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from anndata import AnnData

from ..._keys import CONTEXT, PERTURBATION
from ..._progress import progress_bar
from ...io import RankSignatures
from ...models import MODELS, SignatureModel, get_model
from ._rank_scores import _Scored, _Truth, score_predictions
from ._registry import RESULT_COLUMNS

#: Model name of the reference rows (the same perturbation measured in a source context).
REFERENCE = "reference"


@dataclass(frozen=True)
class TransferSplit:
    """One fold: which contexts are held out, which perturbations train there, which are hidden.

    Attributes
    ----------
    name
        Fold name, ``"<contexts joined by +>/fold<k>"``.
    holdout
        Held-out contexts.
    few_shot
        Perturbations whose held-out-context rows are training data.
    test
        Perturbations whose held-out-context rows are hidden and predicted.
    """

    name: str
    holdout: tuple[str, ...]
    few_shot: tuple[str, ...]
    test: tuple[str, ...]

    def test_pairs(self) -> pd.DataFrame:
        """The hidden (context, perturbation) pairs."""
        rows = [(c, p) for c in self.holdout for p in self.test]
        return pd.DataFrame(rows, columns=[CONTEXT, PERTURBATION], dtype=object)


def transfer_splits(
    sigs: RankSignatures,
    *,
    holdout: Sequence[str],
    folds: int = 5,
    few_shot_fraction: float | None = None,
    split_seed: int = 0,
) -> list[TransferSplit]:
    """The folds of a context-transfer task (see the module docstring).

    Parameters
    ----------
    sigs
        All signatures.
    holdout
        Contexts held out together (their pairs of test perturbations are hidden).
    folds
        Number of folds (chunks of the eligible perturbations).
    few_shot_fraction
        ``None``: K-fold (one chunk held out per fold); a number in (0, 1): share of the
        eligible perturbations kept as few-shot training examples, the rest held out.
    split_seed
        Seed of the shuffle of the eligible perturbations.
    """
    holdout = tuple(str(c) for c in holdout)
    eligible = _eligible(sigs, holdout)
    if isinstance(folds, bool) or int(folds) < 2:
        raise ValueError(f"'folds' must be a whole number >= 2 (got {folds!r})")
    folds = int(folds)
    if eligible.size < folds:
        raise ValueError(
            f"only {eligible.size} perturbations are measured in {list(holdout)} and in another "
            f"context, fewer than folds={folds}; lower 'folds'"
        )
    perm = eligible[np.random.default_rng(split_seed).permutation(eligible.size)]
    chunks = np.array_split(np.arange(eligible.size), folds)
    n_few = _n_few_shot(few_shot_fraction, eligible.size)
    out = []
    label = "+".join(holdout)
    for k, chunk in enumerate(chunks):
        if n_few is None:
            test_pos = chunk
        else:
            few_pos = (chunk[0] + np.arange(n_few)) % eligible.size
            test_pos = np.setdiff1d(np.arange(eligible.size), few_pos)
        test = perm[test_pos]
        few = perm[np.setdiff1d(np.arange(eligible.size), test_pos)]
        out.append(
            TransferSplit(
                name=f"{label}/fold{k}",
                holdout=holdout,
                few_shot=tuple(sorted(map(str, few))),
                test=tuple(sorted(map(str, test))),
            )
        )
    return out


def _eligible(sigs: RankSignatures, holdout: tuple[str, ...]) -> np.ndarray:
    """Perturbations measured in every held-out context and in at least one other, sorted."""
    unknown = sorted(set(holdout) - set(sigs.contexts))
    if unknown or not holdout:
        raise ValueError(
            f"'holdout_context' must name contexts of the signatures (got {unknown or holdout}); "
            f"contexts: {sigs.contexts}"
        )
    table = sigs.table
    by_context = table.groupby(CONTEXT)[PERTURBATION].agg(set)
    others = [c for c in sigs.contexts if c not in holdout]
    if not others:
        raise ValueError(
            f"'holdout_context' {list(holdout)} leaves no source context; hold out fewer contexts"
        )
    in_holdout = set.intersection(*(by_context[c] for c in holdout))
    in_source = set.union(*(by_context[c] for c in others))
    return np.array(sorted(in_holdout & in_source), dtype=object)


def _n_few_shot(few_shot_fraction: float | None, n: int) -> int | None:
    """Few-shot perturbations of ``n`` eligible ones (``None``: K-fold)."""
    if few_shot_fraction is None:
        return None
    f = float(few_shot_fraction)
    n_few = round(f * n)
    if not 0 < f < 1 or n_few < 2 or n_few >= n:
        raise ValueError(
            f"'few_shot_fraction' must be in (0, 1) and leave at least 2 few-shot and 1 "
            f"held-out perturbation of {n} (got {few_shot_fraction!r}); or None "
            "for K-fold"
        )
    return n_few


# --- one fold --------------------------------------------------------------------------------------


def _train_rows(scored: _Scored, split: TransferSplit) -> np.ndarray:
    """Rows of every signature but the hidden (held-out context, test perturbation) pairs."""
    obs = scored.obs
    hidden = obs[CONTEXT].isin(split.holdout) & obs[PERTURBATION].isin(split.test)
    return np.flatnonzero(~hidden.to_numpy())


def fold_predictions(
    sigs: RankSignatures | _Scored,
    split: TransferSplit,
    *,
    models: Sequence[str],
    seed: int = 0,
    progress: bool = False,
) -> dict[str, AnnData]:
    """Fit each model on the fold's training signatures and predict its hidden pairs.

    Only the training rows (every signature but the hidden pairs) reach the models: their scores
    are the ``fit`` input and the gene universe is the genes ranked by at least one of them.
    Returns ``{model: prediction}`` (rows in the order of :meth:`TransferSplit.test_pairs`,
    columns = the training universe).
    """
    scored = sigs if isinstance(sigs, _Scored) else _Scored.of(sigs)
    train = _train_rows(scored, split)
    universe = np.flatnonzero(scored.ranked[train].any(axis=0))
    scores = AnnData(
        X=scored.values[np.ix_(train, universe)],
        obs=scored.obs.iloc[train]
        .reset_index(drop=True)
        .set_axis([str(i) for i in range(train.size)]),
        var=pd.DataFrame(index=scored.genes[universe]),
    )
    pairs = split.test_pairs()
    out: dict[str, AnnData] = {}
    names = list(models)
    if progress:
        names = progress_bar(names, desc=split.name, leave=False)
    for name in names:
        if name not in signature_models():
            raise KeyError(
                f"no signature model named {name!r}. Fix: use one of {sorted(signature_models())}."
            )
        cls = MODELS[name].cls
        params = {"seed": seed} if "seed" in inspect.signature(cls.__init__).parameters else {}
        model = get_model(name, **params)
        assert isinstance(model, SignatureModel)  # registered as predicting signatures
        out[name] = model.fit(scores).predict(conditions=pairs)
    return out


def signature_models() -> list[str]:
    """The registered models predicting signatures (:data:`celltwin.models.MODELS`), in order."""
    return [name for name, spec in MODELS.items() if spec.predicts == "signatures"]


def _on_genes(pred: AnnData, genes: pd.Index) -> np.ndarray:
    """Prediction columns on ``genes``; genes outside the model's universe get the neutral 0."""
    out = np.zeros((pred.n_obs, len(genes)))
    idx = genes.get_indexer(pred.var_names)
    out[:, idx[idx >= 0]] = np.asarray(pred.X, dtype=np.float64)[:, idx >= 0]
    return out


def _reference(scored: _Scored, split: TransferSplit, truth: _Truth) -> pd.DataFrame:
    """Metrics of the same perturbation measured in each source context, averaged over them."""
    pairs = split.test_pairs()
    frames = []
    for source in pd.unique(scored.obs[CONTEXT]):
        if source in split.holdout:
            continue
        rows = np.array([scored.row_of.get((source, p), -1) for p in pairs[PERTURBATION]])
        has = rows >= 0
        if not has.any():
            continue
        x = np.nan_to_num(scored.values[rows[has]].astype(np.float64), nan=0.0)
        frames.append(
            score_predictions(
                x,
                truth[has],
                pairs=pairs.loc[has].reset_index(drop=True),
                fold=split.name,
                model=REFERENCE,
            )
        )
    if not frames:
        return pd.DataFrame(columns=list(RESULT_COLUMNS))
    keys = ["fold", "model", CONTEXT, PERTURBATION, "metric"]
    mean = pd.concat(frames).groupby(keys, sort=False, as_index=False)["value"].mean()
    return mean.loc[:, list(RESULT_COLUMNS)]


def run_transfer_fold(
    sigs: RankSignatures,
    split: TransferSplit,
    *,
    models: Sequence[str],
    seed: int = 0,
    progress: bool = False,
) -> pd.DataFrame:
    """Run one fold: predictions of every model plus the reference rows, scored per pair.

    Predictions and truth are compared on every gene of ``sigs`` (the evaluation side may see
    the held-out rows; the models never do). Returns long results with :data:`RESULT_COLUMNS`.
    """
    scored = _Scored.of(sigs)
    preds = fold_predictions(scored, split, models=models, seed=seed, progress=progress)
    pairs = split.test_pairs()
    truth = _Truth.of(scored, scored.rows(pairs))
    frames = [
        score_predictions(
            _on_genes(p, scored.genes), truth, pairs=pairs, fold=split.name, model=name
        )
        for name, p in preds.items()
    ]
    frames.append(_reference(scored, split, truth))
    return pd.concat(frames, ignore_index=True)
