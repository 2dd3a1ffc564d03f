"""Splits: deterministic, seeded, leakage-guarded train / val / test assignments.

Every strategy writes, in place,

* ``obs[key_added]`` (default ``"split"``): categorical ``train`` / ``val`` / ``test``;
* ``uns['celltwin']['splits'][key_added]``: its parameters (strategy, seed, the unit held out,
  the held-out units and components, cell counts, options), JSON-serialisable, so a split read
  back from ``.h5ad`` can be checked with :func:`check_leakage` and described by
  :func:`split_info`.

A split depends only on the seed and the sorted names of what it holds out, never on the order of
the cells. Every split function ends by running :func:`check_leakage` on what it wrote.

Control cells
-------------
Control cells are always ``train``, in every strategy and every context (held-out contexts
included). They are the inputs from which predictions are generated, so a model may use them
both to learn and, at test time, as the starting point of its predictions: "train" means
"available to the model". Test and val cells are therefore always perturbed cells, and a
held-out context's controls (``split_contexts``) are exactly what the model gets to predict from.
Evaluations that need held-out controls (e.g. a technical-replicate ceiling) should draw them
from the control cells themselves, not from this column.

Strategies
----------
:func:`split_perturbations`
    Unseen perturbations (globally, or independently per context).
:func:`split_contexts`
    Unseen contexts, with optional few-shot perturbations kept in training.
:func:`split_combinations`
    Unseen singles and combinations graded ``combo_seen0/1/2`` (GEARS).
:func:`split_drugs`, :func:`split_doses`
    Unseen drugs (all doses) and unseen doses (highest, lowest or random per drug).
:func:`carve_validation`
    Moves a fraction of an existing split's training units to ``val``.

The two sides of a split: :func:`train_cells` (what a model may learn from) and
:func:`held_out_cells` (the held-out cells with their contexts' controls: the truth to score a
prediction of them against).
"""

from ._carve import carve_validation, split_info
from ._combinations import split_combinations
from ._contexts import split_contexts
from ._drugs import split_doses, split_drugs
from ._leakage import SplitLeakageError, check_leakage
from ._parts import held_out_cells, held_out_mask, train_cells
from ._perturbations import split_perturbations
from ._registry import STRATEGIES, SplitStrategy, apply_split, split_file

__all__ = [
    "STRATEGIES",
    "SplitLeakageError",
    "SplitStrategy",
    "apply_split",
    "carve_validation",
    "check_leakage",
    "held_out_cells",
    "held_out_mask",
    "split_combinations",
    "split_contexts",
    "split_doses",
    "split_drugs",
    "split_file",
    "split_info",
    "split_perturbations",
    "train_cells",
]
