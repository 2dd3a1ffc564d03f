"""Signature suites: predict ranked signatures of held-out (context, perturbation) pairs.

Every suite here is one task, *context transfer* (:mod:`._transfer`), scored with the rank
metrics of :mod:`._rank_scores`. The registered suites read registered signature data sets
(Replogle 2022, NeurIPS 2023, sci-Plex3); ``signature-transfer`` reads any signature files. The
primary metric is ``spearman`` for full rankings (NeurIPS 2023, sci-Plex3) and ``top100_up`` for
Replogle's top-1000-up lists (see :mod:`._rank_scores`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...data import load_signatures
from ...io import RankSignatures, concat_signatures, read_signatures
from ._rank_scores import RANK_METRICS
from ._registry import Suite, register_suite
from ._transfer import TransferSplit, run_transfer_fold, signature_models, transfer_splits

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
    return concat_signatures([load_signatures(n, progress=False) for n in names])


def _parse_signature_files(signatures: object) -> tuple[tuple[str, str], ...]:
    """``[(context, path) | "CONTEXT=PATH" | "PATH", ...]`` as (context, path) pairs."""
    items: Iterable[object]
    if signatures is None:
        items = []
    elif isinstance(signatures, str | os.PathLike):
        items = [signatures]
    elif isinstance(signatures, Iterable):
        items = signatures
    else:
        raise TypeError(
            f"'signatures' must be a list of signature files (got {type(signatures).__name__})"
        )
    out = []
    for item in items:
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
        return signature_models()[i]

    def __len__(self) -> int:
        return len(signature_models())

    def __repr__(self) -> str:
        return repr(signature_models())


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
