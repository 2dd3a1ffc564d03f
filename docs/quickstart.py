"""Quick start: the README's loop (data, split, effects, fit, predict, evaluate), runnable as is.

Run ``python docs/quickstart.py``: it takes about half a minute on a laptop, because the data is a
small simulated experiment and the model is a tiny ``transition`` ensemble. For real cells, replace
the simulation with ``adata = ct.data.load("kang2018")`` (13,999 PBMCs, control vs IFN-beta),
hold out ``test=["CD14_Mono"]`` and use ``ct.models.get_model("transition")`` with its defaults.
"""

from __future__ import annotations

import celltwin as ct

# Canonical cells x genes: obs 'perturbation', 'perturbation_type', 'context'; X = log1p CP10k.
adata = ct.simulate.simulate(
    n_genes=150,
    n_tfs=10,
    contexts=("A", "B", "C"),
    n_perturbations=4,
    combinations=1,
    cells_per_condition=20,
    seed=0,
).adata
print(ct.io.describe(adata).to_text())

# Hold out the perturbed cells of one context (its controls stay in training).
ct.split.split_contexts(adata, test=["C"])
effects = ct.pp.pseudobulk(adata)  # mean and delta vs matched control, per condition
print(f"{effects.n_obs} conditions, {effects.n_vars} genes")

# Fit on split == "train" only, then predict the held-out conditions.
tiny = {
    "n_members": 2,
    "max_steps": 40,
    "hidden": 16,
    "n_latent": 8,
    "cells": 16,
    "progress": False,
}
model = ct.models.get_model("transition", **tiny).fit(adata)
pred = model.predict(adata, conditions=ct.models.conditions_of(adata, split="test"))

# Score against the held-out truth, beside the baselines and the split-half noise ceiling.
result = ct.eval.evaluate(
    ct.split.held_out_cells(adata), pred, train=ct.split.train_cells(adata), n_boot=100
)
columns = ["mean", "baseline_control", "baseline_mean", "ceiling"]
print(result.summary_frame()[columns].round(3).to_string())
