"""Held-out effect predictions of a cell suite, cached for the screen benchmarks (issue 18).

For each fold of a registered cell suite, every model is fitted on the fold's training cells
only (the suite's own parameters and ``fit`` arguments, e.g. the GO + STRING prior features)
and asked for the held-out conditions' mean effects (:func:`celltwin.models.predict_effects`).
Also written per fold: the *measured* mean effect of every condition of the suite (held-out
and training; mean of its cells minus the mean of its context's control cells), on the fold's
genes; the screens use the training rows as measured candidates and the held-out rows as
queries / truth only.

Cache layout (h5ad, no pickle)::

    /tmp/bench18/<suite>/<fold>/measured.h5ad   obs: context, perturbation, n_cells, held_out
    /tmp/bench18/<suite>/<fold>/<model>.h5ad    predict_effects output (+ uns fit_s)

    PYTHONPATH=src nice -n 10 python benchmarks/_bench18_cells.py SUITE --models a,b,c
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData, read_h5ad

from celltwin._keys import CONTEXT, CONTROL, PERTURBATION
from celltwin.benchmark import get_suite
from celltwin.models import UnseenConditionError, predict_effects

CACHE = Path("/tmp/bench18")


def fold_dir(suite: str, fold: str) -> Path:
    return CACHE / suite / fold


def measured_effects(cells: AnnData, genes: list[str], held_out: set[tuple[str, str]]) -> AnnData:
    """Mean of each (context, perturbation)'s cells minus its context's control mean."""
    sub = cells[:, genes]
    x = sub.X.toarray() if hasattr(sub.X, "toarray") else np.asarray(sub.X)
    obs = sub.obs[[CONTEXT, PERTURBATION]].astype(str)
    groups = obs.groupby([CONTEXT, PERTURBATION], sort=True).indices
    control = {c: x[idx].mean(axis=0) for (c, p), idx in groups.items() if p == CONTROL}
    rows, meta = [], []
    for (c, p), idx in groups.items():
        if p == CONTROL or c not in control:
            continue
        rows.append(x[idx].mean(axis=0) - control[c])
        meta.append((c, p, idx.size, (c, p) in held_out))
    table = pd.DataFrame(meta, columns=[CONTEXT, PERTURBATION, "n_cells", "held_out"])
    table.index = [f"{c}|{p}" for c, p, *_ in meta]
    return AnnData(
        X=np.vstack(rows).astype(np.float32), obs=table, var=pd.DataFrame(index=list(genes))
    )


def _predict(model: object, query: AnnData, conditions: pd.DataFrame, *, seed: int) -> AnnData:
    """``predict_effects`` of every condition; a refused one (no prior features for its target)
    becomes a NaN row with ``obs['refused']`` True, as the benchmark runner records it."""
    try:
        eff = predict_effects(model, query, conditions=conditions, seed=seed)  # type: ignore[arg-type]
        eff.obs["refused"] = False
        return eff
    except UnseenConditionError:
        pass
    parts = []
    for i in range(len(conditions)):
        row = conditions.iloc[[i]]
        try:
            part = predict_effects(model, query, conditions=row, seed=seed)  # type: ignore[arg-type]
            part.obs["refused"] = False
        except UnseenConditionError:
            part = None
        parts.append(part)
    genes = next(p for p in parts if p is not None).var_names
    rows, obs = [], []
    for i, part in enumerate(parts):
        if part is None:
            rows.append(np.full(len(genes), np.nan, dtype=np.float32))
            obs.append({**conditions.iloc[i].to_dict(), "refused": True})
        else:
            rows.append(np.asarray(part.X, dtype=np.float32)[0])
            obs.append({**conditions.iloc[i].to_dict(), "refused": False})
    table = pd.DataFrame(obs)
    table.index = [str(i) for i in range(len(table))]
    return AnnData(X=np.vstack(rows), obs=table, var=pd.DataFrame(index=genes))


def run_suite(suite_name: str, models: list[str], *, seed: int = 0) -> None:
    suite = get_suite(suite_name)
    task = suite.task
    assert task is not None, f"{suite_name} is not a cell suite"
    source = task.data({})
    for fold_name in task.folds():
        out = fold_dir(suite_name, fold_name)
        out.mkdir(parents=True, exist_ok=True)
        fold = task.fold_data(fold_name)
        conditions = fold.conditions[[CONTEXT, PERTURBATION]].astype(str).reset_index(drop=True)
        held = set(zip(conditions[CONTEXT], conditions[PERTURBATION], strict=True))
        if not (out / "measured.h5ad").exists():
            measured_effects(source, list(fold.genes), held).write_h5ad(out / "measured.h5ad")
        for name in models:
            path = out / f"{name}.h5ad"
            if path.exists():
                continue
            start = time.perf_counter()
            model = task.make_model(name, seed=seed, params=task.model_params(name, {}))
            model.fit(fold.train, **task.model_fit_kwargs(name, fold, {}))
            fit_s = time.perf_counter() - start
            eff = _predict(model, fold.query, conditions, seed=seed)
            eff.uns = {"fit_s": fit_s, "predict_s": time.perf_counter() - start - fit_s}
            eff.obs = eff.obs.astype(
                {c: str for c in eff.obs.columns if eff.obs[c].dtype == object}
            )
            eff.write_h5ad(path)
            print(f"{suite_name} {fold_name} {name}: fit {fit_s:.0f}s", flush=True)


def load_fold(suite: str, fold: str, models: list[str]) -> tuple[AnnData, dict[str, AnnData]]:
    """The cached measured effects and each model's predictions of one fold."""
    d = fold_dir(suite, fold)
    return read_h5ad(d / "measured.h5ad"), {m: read_h5ad(d / f"{m}.h5ad") for m in models}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite")
    parser.add_argument("--models", required=True)
    args = parser.parse_args()
    run_suite(args.suite, args.models.split(","))


if __name__ == "__main__":
    main()
