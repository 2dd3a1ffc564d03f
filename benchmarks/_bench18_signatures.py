"""Held-out K562 signature predictions of Replogle 2022, cached for the reverse screen (issue 18).

The context-transfer task of ``replogle2022-k562-to-rpe1`` turned around: K562 is the held-out
context, 5 folds over the knockdowns measured in both lines (split seed 0), each fold hiding
20% of the K562 signatures (:func:`transfer_splits`). Every signature model is fitted on the
fold's training signatures only (all RPE1 rows and the other knockdowns' K562 rows) and
predicts the hidden K562 signatures (:func:`fold_predictions`, the suite's own code).

Cache (h5ad)::

    /tmp/bench18/replogle/fold<k>/<model>.h5ad   rows = the fold's test knockdowns (sorted),
                                                 columns = the fold's training gene universe

    PYTHONPATH=src nice -n 10 python benchmarks/_bench18_signatures.py --models a,b
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from anndata import AnnData, read_h5ad

from celltwin.benchmark._suites._rank_scores import _Scored
from celltwin.benchmark._suites._signatures import _registered
from celltwin.benchmark._suites._transfer import TransferSplit, fold_predictions, transfer_splits
from celltwin.io import RankSignatures

CACHE = Path("/tmp/bench18/replogle")
HOLDOUT = ("K562",)
DATASETS = ("replogle2022_k562", "replogle2022_rpe1")


def signatures() -> RankSignatures:
    return _registered(DATASETS)


def splits(sigs: RankSignatures) -> list[TransferSplit]:
    return transfer_splits(sigs, holdout=HOLDOUT, folds=5, split_seed=0)


def run(models: list[str], *, seed: int = 0) -> None:
    sigs = signatures()
    scored = _Scored.of(sigs)
    for k, split in enumerate(splits(sigs)):
        out = CACHE / f"fold{k}"
        out.mkdir(parents=True, exist_ok=True)
        for name in models:
            path = out / f"{name}.h5ad"
            if path.exists():
                continue
            start = time.perf_counter()
            pred = fold_predictions(scored, split, models=[name], seed=seed)[name]
            pred.uns = {"fit_predict_s": time.perf_counter() - start}
            pred.obs = pred.obs.astype(str)
            pred.write_h5ad(path)
            print(f"fold{k} {name}: {pred.uns['fit_predict_s']:.0f}s", flush=True)


def load(k: int, model: str) -> AnnData:
    return read_h5ad(CACHE / f"fold{k}" / f"{model}.h5ad")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True)
    run(parser.parse_args().models.split(","))


if __name__ == "__main__":
    main()
