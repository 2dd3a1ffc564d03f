"""Where ``transition``'s interactions on simulated pairs come from: law, network, or neither.

On each fold of ``sim-combinations`` (v3), ``transition`` is fitted once and its effects
(:meth:`~celltwin.models.TransitionModel.predict_effects`, over all the context's control cells)
are read twice: as fitted, and with every member's correction switched off (the classical
estimate alone). For each held-out pair with at least one unseen part, the predicted interaction
(pair minus its parts: training effects of trained parts, the model's own prediction of unseen
ones) is scored against the simulator's true interaction by the suite's partial correlation;
``law`` is the interaction law applied to the parts alone. PearsonΔ and MSE of the pair's
effect against its true effect show what the correction does to the prediction itself.

    .venv/bin/python benchmarks/interaction_diagnosis.py [--data-seed 0]
"""

from __future__ import annotations

import argparse
import copy

import numpy as np
import pandas as pd

from celltwin._keys import PERTURBATION, split_combination
from celltwin.benchmark import make_fold
from celltwin.benchmark._suites import _simulated as cs
from celltwin.eval import interaction_pearson
from celltwin.models import get_model
from celltwin.models._transition._features import pair_features

CELLS = 500  # the suite's v3 default


def _partial_r(x: np.ndarray, y: np.ndarray, additive: np.ndarray) -> float:
    """The suite's interaction score (:func:`celltwin.eval.interaction_pearson`) of one pair."""
    return float(interaction_pearson(x, y, additive=additive)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-seed", type=int, default=0)
    args = parser.parse_args()
    opts = {"smoke": False, "data_seed": args.data_seed, "cells_per_condition": CELLS}
    sim = cs._simulation("combinations", False, args.data_seed, CELLS)
    truth = np.asarray(sim.interactions.X)
    row = {n.split("|")[1]: i for i, n in enumerate(sim.interactions.obs_names)}
    records = []
    for f in range(5):
        adata = sim.adata.copy()
        cs._combo_assign(adata, f"split{f}", opts)
        fold = make_fold(adata, name=f"split{f}", n_top_genes=None)
        model = get_model("transition", seed=0, progress=False).fit(fold.train)
        classical = copy.deepcopy(model)
        for record in classical.training_:
            record["views"] = []  # no member corrects anything
        genes = sim.interactions.var_names.get_indexer(fold.genes)
        trained = set(fold.train.obs[PERTURBATION].astype(str))
        pairs = [p for p in fold.conditions[PERTURBATION] if "+" in p]
        unseen = sorted({q for p in pairs for q in split_combination(p) if q not in trained})
        conditions = [("A", p) for p in pairs + unseen]
        train_mean = {
            p: np.asarray(fold.train[fold.train.obs[PERTURBATION] == p].X.mean(0)).ravel()
            for p in trained
        }
        control = np.asarray(fold.query.X.mean(0)).ravel()
        effects = {}
        for name, m in (("with correction", model), ("without", classical)):
            eff = m.predict_effects(fold.query, conditions=conditions)
            effects[name] = {p: eff.X[i].astype(float) for i, p in enumerate(eff.obs[PERTURBATION])}
        for p in pairs:
            parts = split_combination(p)
            seen = sum(q in trained for q in parts)
            if seen == 2:
                continue
            true_inter = truth[row[p]][genes]
            true_effect = np.asarray(sim.effects[f"A|{p}|"].X).ravel()[genes]
            for name, e in effects.items():
                ref = [train_mean[q] - control if q in trained else e[q] for q in parts]
                s = np.sum(ref, axis=0)
                records += [
                    (seen, name, "interaction r", _partial_r(e[p] - s, true_inter, s)),
                    (seen, name, "PearsonΔ", np.corrcoef(e[p], true_effect)[0, 1]),
                    (seen, name, "MSE", float(np.mean((e[p] - true_effect) ** 2))),
                ]
            ref = [
                train_mean[q] - control if q in trained else effects["without"][q] for q in parts
            ]
            law = pair_features(ref) @ model._transfer().pair_coef
            records.append(
                (
                    seen,
                    "law alone",
                    "interaction r",
                    _partial_r(law, true_inter, np.sum(ref, axis=0)),
                )
            )
    df = pd.DataFrame(records, columns=["parts seen", "variant", "score", "value"])
    table = df.groupby(["parts seen", "score", "variant"])["value"].agg(["mean", "sem", "count"])
    print(f"### sim-combinations v3, data_seed {args.data_seed}: pairs with unseen parts\n")
    print(table.round(3).to_markdown())


if __name__ == "__main__":
    main()
