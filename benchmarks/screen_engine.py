"""Cost of the screen engine itself: N single-gene candidates on Papalexi THP-1 with a fast model.

The model is ``linear`` with GO+STRING gene features (so every prior gene can be predicted in
one batched call); the objective is ``move --pathway JAK-STAT --toward down`` (cheap) or
``mimic`` with the weighted connectivity score. Reported: the whole screen's wall time, the
time spent inside ``predict_effects`` alone (the model), the rest (scoring, intervals, top genes,
ranking: the engine), and the peak resident memory.

    python benchmarks/screen_engine.py --n 10000 --objective move
    python benchmarks/screen_engine.py --n 10000 --objective mimic
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from celltwin import data, models, priors, screen, split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--objective", choices=["move", "mimic"], default="move")
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args()

    adata = data.load("papalexi2021_subset")
    split.split_perturbations(adata, test=["STAT1", "JAK2", "CMTM6", "UBE2L6"], seed=0)
    features = priors.gene_embedding("go+string")
    model = models.LinearBaseline().fit(adata, perturbation_features=features)
    names = [g for g in features.index if g != "control"][: args.n]
    candidates = screen.genes(names)
    if args.objective == "move":
        goal = screen.get_objective("move", pathway="JAK-STAT", toward="down")
    else:
        query = models.predict_effects(model, None, conditions=[("THP-1", "IFNGR1")])
        scores = dict(zip(query.var_names, np.asarray(query.X[0]), strict=True))
        goal = screen.get_objective("mimic", query=screen.query_from_scores(scores))

    inside = [0.0]
    original = models.predict_effects

    def timed(*a, **k):  # the model's share of the wall time
        t = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            inside[0] += time.perf_counter() - t

    import celltwin.screen._predictions as preds

    preds.predict_effects = timed
    t0 = time.perf_counter()
    result = screen.screen(
        model, adata, candidates=candidates, objective=goal, context="THP-1",
        batch_size=args.batch_size, progress=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{len(candidates)} candidates ({len(result.table)} scored, {len(result.refused)} "
        f"refused), objective {args.objective}: {wall:.1f} s wall, predict_effects "
        f"{inside[0]:.1f} s, engine {wall - inside[0]:.1f} s, peak RSS {peak:.0f} MiB"
    )
    print(result.table.head(5).to_string(index=False))


if __name__ == "__main__":
    main()
