"""Signature benchmark suites: predict ranked signatures of held-out (context, perturbation) pairs.

Every suite here is one task, *context transfer*: the signatures of some perturbations are
hidden in one or more held-out contexts, and models predict them from everything else (the
same perturbations in the other contexts, the other perturbations in the held-out contexts).

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
(the columns models see) is the genes ranked by at least one training signature. Scores use
:meth:`celltwin.io.RankSignatures.to_scores` with ``transform="linear_rank"`` in every suite: a
full ranking of ``n`` genes scores ``1 - 2 r / (n - 1)`` (+1 most up, -1 most down), a top-k list
``(k - r) / k``; the transform is per signature, so no held-out row shapes it. Genes a *full*
ranking did not test are ``NaN`` (not measured) in the models' input; genes below a top-k list
score 0 (tied below the list).

Metrics (per held-out pair, columns of :data:`celltwin.benchmark.RESULT_COLUMNS`)
--------------------------------------------------------------------------------------
Predictions are scored on the genes of the whole data set; genes outside the training universe
get the neutral score 0.

``spearman``
    Spearman correlation of predicted and true scores. Full rankings: over the genes the truth
    ranks. Top-k truth (Replogle): over the listed genes only (the order within the true top
    list; the genes tied below it carry no order).
``top50_up``, ``top100_up``
    Share of the true top-k up genes in the predicted top-k (over all genes of the data set).
``top50_down``, ``top100_down``
    The same for the most down genes; full rankings only (a top-k list has no down genes).
``auroc_top100_up``
    AUROC of the predicted scores for recovering the true top-100 up genes among all genes.

The primary metric is ``spearman`` for full rankings (NeurIPS 2023, sci-Plex3). For Replogle's
top-1000-up lists it is ``top100_up``: the truth defines which genes go up most, not an order of
all genes, and Spearman on the listed genes ignores whether a model puts them on top at all.

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
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import CONTEXT, PERTURBATION
from ..eval._metrics import spearman, topk_auroc, topk_overlap
from ..io._signatures import RankSignatures, concat_signatures, read_signatures
from ..models._signature import SIGNATURE_MODELS, get_signature_model
from ._suite import RESULT_COLUMNS, Suite, register_suite

#: Score transform of every signature suite (see :data:`celltwin.io._signatures.TRANSFORMS`).
TRANSFORM = "linear_rank"
#: Model name of the reference rows (the same perturbation measured in a source context).
REFERENCE = "reference"


# --- splits ------------------------------------------------------------------------------------


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
    eligible = np.array(sorted(in_holdout & in_source), dtype=object)
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
    if few_shot_fraction is not None:
        f = float(few_shot_fraction)
        n_few = round(f * eligible.size)
        if not 0 < f < 1 or n_few < 2 or n_few >= eligible.size:
            raise ValueError(
                f"'few_shot_fraction' must be in (0, 1) and leave at least 2 few-shot and 1 "
                f"held-out perturbation of {eligible.size} (got {few_shot_fraction!r}); or None "
                "for K-fold"
            )
    out = []
    label = "+".join(holdout)
    for k, chunk in enumerate(chunks):
        if few_shot_fraction is None:
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


# --- scores --------------------------------------------------------------------------------------


def _ranked_mask(sigs: RankSignatures, genes: pd.Index) -> np.ndarray:
    """``(signatures, genes)``: True where the signature's ``up_full`` ranks the gene."""
    lists = sigs.table["up_full"].tolist()
    lengths = np.fromiter(map(len, lists), dtype=np.int64, count=len(lists))
    flat = np.fromiter(chain.from_iterable(lists), dtype=object, count=int(lengths.sum()))
    cols = genes.get_indexer(flat)  # one hashed lookup for all lists
    rows = np.repeat(np.arange(len(lists)), lengths)
    mask = np.zeros((len(lists), len(genes)), dtype=bool)
    mask[rows[cols >= 0], cols[cols >= 0]] = True
    return mask


def signature_scores(sigs: RankSignatures, *, genes: Sequence[str] | None = None) -> AnnData:
    """Scores for the models: ``linear_rank``, with ``NaN`` for genes a full ranking did not test.

    Genes below a top-k list keep 0 (they are tied below the list, not unmeasured).

    Parameters
    ----------
    sigs
        The signatures to score.
    genes
        Columns; default: every gene the signatures name.
    """
    scores = sigs.to_scores(genes=genes, transform=TRANSFORM)
    full = (scores.obs["ranking"].astype(str) == "full").to_numpy()
    if full.any():
        x = np.array(scores.X, dtype=np.float32)
        x[full[:, None] & ~_ranked_mask(sigs, scores.var_names)] = np.nan
        scores.X = x
    return scores


@dataclass(frozen=True)
class _Scored:
    """Every signature of a data set scored once on all its genes (sliced per fold).

    ``values``: :func:`signature_scores` (NaN where a full ranking does not rank a gene, 0 below
    a top-k list); ``ranked``: where ``up_full`` ranks the gene; ``full``: full-ranking rows.
    The transform is per signature, so a row's scores never depend on other rows.
    """

    genes: pd.Index
    values: np.ndarray
    ranked: np.ndarray
    full: np.ndarray
    obs: pd.DataFrame
    row_of: dict[tuple[str, str], int]

    @classmethod
    def of(cls, sigs: RankSignatures) -> _Scored:
        genes = sigs.genes()
        scores = sigs.to_scores(genes=genes, transform=TRANSFORM)
        ranked = _ranked_mask(sigs, genes)
        full = (scores.obs["ranking"].astype(str) == "full").to_numpy()
        values = np.asarray(scores.X, dtype=np.float32)
        values[full[:, None] & ~ranked] = np.nan
        obs = scores.obs.loc[:, [CONTEXT, PERTURBATION]].astype(str)
        keys = zip(obs[CONTEXT], obs[PERTURBATION], strict=True)
        return cls(genes, values, ranked, full, obs, {k: i for i, k in enumerate(keys)})

    def rows(self, pairs: pd.DataFrame) -> np.ndarray:
        """Row of each (context, perturbation) of ``pairs``."""
        keys = zip(pairs[CONTEXT], pairs[PERTURBATION], strict=True)
        return np.array([self.row_of[k] for k in keys], dtype=np.int64)


@dataclass(frozen=True)
class _Truth:
    """True scores of the held-out pairs on the evaluation genes.

    ``values``: full rankings NaN where not tested, top-k lists 0 below the list (used by the
    top-k and AUROC metrics); ``ranked``: NaN wherever the signature does not rank the gene (used
    by Spearman); ``full``: which rows are full rankings.
    """

    values: np.ndarray
    ranked: np.ndarray
    full: np.ndarray

    @classmethod
    def of(cls, scored: _Scored, rows: np.ndarray) -> _Truth:
        values = scored.values[rows].astype(np.float64)
        ranked = np.where(scored.ranked[rows], values, np.nan)
        return cls(values=values, ranked=ranked, full=scored.full[rows])

    def __getitem__(self, rows: np.ndarray) -> _Truth:
        return _Truth(self.values[rows], self.ranked[rows], self.full[rows])


@dataclass(frozen=True)
class RankMetric:
    """A rank metric of the signature suites: name, function and whether it needs full rankings."""

    name: str
    func: Callable[[np.ndarray, _Truth], np.ndarray]
    full_only: bool = False


#: Metrics every signature suite reports (in this order).
RANK_METRICS: tuple[RankMetric, ...] = (
    RankMetric("spearman", lambda p, t: spearman(p, t.ranked)),
    RankMetric("top50_up", lambda p, t: topk_overlap(p, t.values, k=50, direction="up")),
    RankMetric("top100_up", lambda p, t: topk_overlap(p, t.values, k=100, direction="up")),
    RankMetric("top50_down", lambda p, t: topk_overlap(p, t.values, k=50, direction="down"), True),
    RankMetric(
        "top100_down", lambda p, t: topk_overlap(p, t.values, k=100, direction="down"), True
    ),
    RankMetric("auroc_top100_up", lambda p, t: topk_auroc(p, t.values, k=100, direction="up")),
)


def score_predictions(
    pred: np.ndarray, truth: _Truth, *, pairs: pd.DataFrame, fold: str, model: str
) -> pd.DataFrame:
    """Long results (:data:`RESULT_COLUMNS`) of predicted score rows against the truth."""
    frames = []
    for metric in RANK_METRICS:
        rows = truth.full if metric.full_only else np.ones(len(pairs), dtype=bool)
        if not rows.any():
            continue
        value = metric.func(pred[rows], truth[rows])
        frames.append(
            pd.DataFrame(
                {
                    "fold": fold,
                    "model": model,
                    CONTEXT: pairs[CONTEXT].to_numpy()[rows],
                    PERTURBATION: pairs[PERTURBATION].to_numpy()[rows],
                    "metric": metric.name,
                    "value": value.astype(np.float64),
                }
            )
        )
    return pd.concat(frames, ignore_index=True).loc[:, list(RESULT_COLUMNS)]


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
        from tqdm.auto import tqdm

        names = tqdm(names, desc=split.name, leave=False)
    for name in names:
        if name not in SIGNATURE_MODELS:
            raise KeyError(
                f"no signature model named {name!r}. Fix: use one of {sorted(SIGNATURE_MODELS)}."
            )
        cls = SIGNATURE_MODELS[name].cls
        params = {"seed": seed} if "seed" in inspect.signature(cls.__init__).parameters else {}
        model = get_signature_model(name, **params).fit(scores)
        out[name] = model.predict(conditions=pairs)
    return out


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


# --- suites ------------------------------------------------------------------------------------------


def _subsample(sigs: RankSignatures, max_perturbations: int | None, seed: int) -> RankSignatures:
    """At most ``max_perturbations`` perturbations (a seeded draw), for quick runs."""
    if max_perturbations is None:
        return sigs
    perts = np.array(sorted(sigs.perturbations), dtype=object)
    if int(max_perturbations) >= perts.size:
        return sigs
    keep = np.random.default_rng(seed).choice(perts, size=int(max_perturbations), replace=False)
    return sigs.subset(perturbations=list(keep))


@cache
def _registered(names: tuple[str, ...]) -> RankSignatures:
    """Registered signature datasets, loaded once per process and stacked."""
    from ..data import load_signatures

    return concat_signatures([load_signatures(n, progress=False) for n in names])


def _parse_signature_files(signatures: object) -> tuple[tuple[str, str], ...]:
    """``[(context, path) | "CONTEXT=PATH" | "PATH", ...]`` as (context, path) pairs."""
    if signatures is None or isinstance(signatures, str | os.PathLike):
        signatures = [] if signatures is None else [signatures]
    out = []
    for item in signatures:  # type: ignore[union-attr]
        if isinstance(item, tuple | list) and len(item) == 2:
            context, path = str(item[0]), os.fspath(item[1])
        elif isinstance(item, str | os.PathLike):
            text = os.fspath(item)
            if "=" in text and not Path(text).exists():
                context, path = text.split("=", 1)
            else:
                path = text
                name = Path(path).name
                context = next(
                    (name[: -len(s)] for s in (".json.gz", ".json") if name.endswith(s)),
                    Path(path).stem,
                )
        else:
            raise ValueError(
                f"'signatures' entries must be (context, path), 'CONTEXT=PATH' or 'PATH' "
                f"(got {item!r})"
            )
        out.append((context, path))
    if not out:
        raise ValueError(
            "the signature-transfer suite needs 'signatures': a list of signature files, each "
            "'CONTEXT=PATH', 'PATH' (context = file name without .json.gz) or (context, path)"
        )
    return tuple(out)


def _read_files(files: tuple[tuple[str, str], ...]) -> RankSignatures:
    # Keyed on modification times too, so an edited file is read again.
    stamps = tuple(Path(p).stat().st_mtime_ns if Path(p).exists() else -1 for _, p in files)
    return _read_files_cached(files, stamps)


@cache
def _read_files_cached(
    files: tuple[tuple[str, str], ...], stamps: tuple[int, ...]
) -> RankSignatures:
    return concat_signatures([read_signatures(path, context=ctx) for ctx, path in files])


def _holdout_groups(holdout: object, contexts: list[str]) -> list[tuple[str, ...]]:
    """``None``: each context in turn; a string (comma-separated = together) or a list."""
    if holdout is None:
        return [(c,) for c in contexts]
    if isinstance(holdout, str):
        return [tuple(part.strip() for part in holdout.split(",") if part.strip())]
    if isinstance(holdout, Sequence) and all(isinstance(h, str) for h in holdout):
        return [tuple(holdout)]
    if isinstance(holdout, Sequence):
        return [(h,) if isinstance(h, str) else tuple(h) for h in holdout]
    raise ValueError(
        f"'holdout_context' must be a context, a list of contexts or None (got {holdout!r})"
    )


class _RegisteredModels(Sequence[str]):
    """The names in the signature-model registry at the time they are read (models registered
    later are included)."""

    def __getitem__(self, i: Any) -> Any:
        return list(SIGNATURE_MODELS)[i]

    def __len__(self) -> int:
        return len(SIGNATURE_MODELS)

    def __repr__(self) -> str:
        return repr(list(SIGNATURE_MODELS))


@dataclass(frozen=True)
class TransferSuite:
    """The callables of a context-transfer suite (``folds`` and ``run_fold``) with its defaults.

    ``load(**options)`` returns the signatures; ``defaults`` holds the options a caller may
    override:

    ``holdout_context``
        ``None`` (each context in turn), a context, several contexts held out together (a list
        of names or one comma-separated string), or a list of such groups (one after another).
    ``few_shot_fraction``
        ``None`` for K-fold, else the share of few-shot perturbations (module docstring).
    ``n_folds``
        Number of folds per held-out group (named apart from ``run_benchmark(folds=...)``,
        which picks folds by name).
    ``split_seed``
        Seed of the perturbation shuffle (and of ``max_perturbations``' draw).
    ``max_perturbations``
        Keep at most this many perturbations (quick runs, tests); ``None`` keeps all.
    ``signatures``
        Generic suite only: signature files, ``[(context, path) | "CONTEXT=PATH" | "PATH"]``
        (context = file name without ``.json.gz``).
    """

    load: Callable[..., RankSignatures]
    defaults: dict[str, Any]

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise TypeError(
                f"unknown suite option(s) {unknown}; this suite takes {sorted(self.defaults)}"
            )
        return {**self.defaults, **options}

    def splits(self, **options: Any) -> list[TransferSplit]:
        """Every fold's split, in order."""
        opts = self._options(options)
        sigs = self._signatures(opts)
        out: list[TransferSplit] = []
        for group in _holdout_groups(opts["holdout_context"], sigs.contexts):
            out += transfer_splits(
                sigs,
                holdout=group,
                folds=opts["n_folds"],
                few_shot_fraction=opts["few_shot_fraction"],
                split_seed=opts["split_seed"],
            )
        return out

    def _signatures(self, opts: dict[str, Any]) -> RankSignatures:
        sigs = self.load(**{k: opts[k] for k in ("signatures",) if k in opts})
        return _subsample(sigs, opts["max_perturbations"], opts["split_seed"])

    def folds(self, **options: Any) -> list[str]:
        """Fold names (``"<held-out contexts>/fold<k>"``)."""
        return [s.name for s in self.splits(**options)]

    def run_fold(
        self,
        fold: str,
        *,
        models: Sequence[str] | None = None,
        seed: int = 0,
        progress: bool = False,
        **options: Any,
    ) -> pd.DataFrame:
        """Results of one fold (:data:`RESULT_COLUMNS`); ``models`` default: every registered
        signature model; ``seed`` seeds the models (e.g. low_rank's validation draw)."""
        opts = self._options(options)
        splits = {s.name: s for s in self.splits(**options)}
        if fold not in splits:
            raise KeyError(f"unknown fold {fold!r}; folds: {list(splits)}")
        names = list(_RegisteredModels()) if models is None else list(models)
        return run_transfer_fold(
            self._signatures(opts), splits[fold], models=names, seed=seed, progress=progress
        )


def _defaults(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "holdout_context": None,
        "few_shot_fraction": None,
        "n_folds": 5,
        "split_seed": 0,
        "max_perturbations": None,
    }
    return {**base, **overrides}


_FULL_METRICS = tuple(m.name for m in RANK_METRICS)
_TOP_METRICS = ("top100_up", "auroc_top100_up", "top50_up", "spearman")

SUITES: dict[str, TransferSuite] = {
    "replogle2022-k562-to-rpe1": TransferSuite(
        load=lambda: _registered(("replogle2022_k562", "replogle2022_rpe1")),
        defaults=_defaults(holdout_context="RPE1"),
    ),
    "neurips2023-heldout-celltype": TransferSuite(
        load=lambda: _registered(("neurips2023",)),
        defaults=_defaults(holdout_context=("B", "myeloid"), few_shot_fraction=0.2),
    ),
    "sciplex3-heldout-line": TransferSuite(
        load=lambda: _registered(("sciplex3",)),
        defaults=_defaults(
            holdout_context=[("A549",), ("K562",), ("MCF7",)], few_shot_fraction=0.2
        ),
    ),
    "signature-transfer": TransferSuite(
        load=lambda signatures: _read_files(_parse_signature_files(signatures)),
        defaults=_defaults(signatures=None),
    ),
}

_DESCRIPTIONS = {
    "replogle2022-k562-to-rpe1": (
        "Replogle 2022 CRISPRi: predict each knockdown's RPE1 top-1000-up signature from K562 "
        "(+ RPE1 of the other knockdowns); 5-fold over knockdowns.",
        "replogle2022_k562+replogle2022_rpe1",
        _TOP_METRICS,
    ),
    "neurips2023-heldout-celltype": (
        "NeurIPS 2023 PBMC drugs: predict B and myeloid signatures from T and NK, with 20% of "
        "drugs measured in B/myeloid as few-shot examples (rotating over 5 folds).",
        "neurips2023",
        _FULL_METRICS,
    ),
    "sciplex3-heldout-line": (
        "sci-Plex3: predict one cell line's drug signatures from the other two lines, 20% of "
        "its drugs as few-shot examples (5 folds per line).",
        "sciplex3",
        _FULL_METRICS,
    ),
    "signature-transfer": (
        "Any signature files: hold out a context (K-fold or few-shot over perturbations) and "
        "predict its signatures from the others.",
        "",
        _FULL_METRICS,
    ),
}

for _name, _suite in SUITES.items():
    _description, _data, _metrics = _DESCRIPTIONS[_name]
    register_suite(
        Suite(
            name=_name,
            version="1",
            description=_description,
            kind="signatures",
            folds=_suite.folds,
            run_fold=_suite.run_fold,
            models=_RegisteredModels(),
            metrics=_metrics,
            data=_data,
            options=dict(_suite.defaults),
        )
    )
