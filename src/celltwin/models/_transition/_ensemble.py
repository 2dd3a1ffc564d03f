"""The ensemble of ``transition``: members, their seeds and validation conditions, the time
budget, checkpoint/resume, and the validation errors the intervals are calibrated on.

Member ``m`` is trained on the training conditions outside its validation set
(:func:`validation_rows`), with torch seeded ``seed * 1000 + m`` and an equal share of the time
left; a finished member is written to the checkpoint folder, and a fit with the same data,
parameters and folder takes it from there instead of training it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from typing import Any, Final

import numpy as np
import torch

from .._conditions import N_CELLS, ConditionKey
from ._checkpoint import Checkpoint, get_flat, set_flat
from ._classical import TrainingCells
from ._domain import calibrate_domain, references, validation_score
from ._estimate import VIEWS, Estimate
from ._features import Transfer
from ._intervals import ViewError, calibrate, held_out_errors
from ._module import TransitionModule
from ._network import LearnedCorrection
from ._parallel import Parallel
from ._train import MemberResult, Pools, Settings, as_tensor, train_member

_BATCH_SIZE: Final = 16
_EVAL_EVERY: Final = 10
_WEIGHT_DECAY: Final = 1e-4
_VAL_FRACTION: Final = 0.2

#: ``(row, view, estimate)``: a training condition's classical estimate of one kind.
Item = tuple[int, str, np.ndarray]


def make_pools(model: LearnedCorrection, cells: TrainingCells, device: torch.device) -> Pools:
    """The latent training cells and each context's control rows / condition's rows."""
    contexts, is_control = cells.contexts, cells.is_control
    pools = Pools(
        cells=as_tensor(cells.z),
        summary=as_tensor(model.context_summary_),
        controls=[
            torch.as_tensor(np.flatnonzero(is_control & (contexts == c))) for c in model.contexts_
        ],
        conditions=[torch.as_tensor(r) for r in cells.condition_rows],
    )
    return Pools(pools.cells.to(device), pools.summary.to(device), pools.controls, pools.conditions)


def train_settings(model: LearnedCorrection) -> Settings:
    """Optimisation settings of every member."""
    return Settings(
        max_steps=int(model.max_steps),
        batch_size=_BATCH_SIZE,
        # Conditions with few cells are not oversampled beyond need (tiny data stays fast).
        cells=int(min(model.cells, max(16, np.median(model.conditions_[N_CELLS])))),
        lr=float(model.lr),
        weight_decay=_WEIGHT_DECAY,
        correction_penalty=float(model.correction_penalty),
        patience=int(model.patience),
        eval_every=_EVAL_EVERY,
    )


def validation_rows(keys: list[ConditionKey], seed: int, member: int) -> list[int]:
    """Conditions held out of member ``member``'s fit (training data only): one training
    context's when there are at least three (rotated across members), else a fifth of the
    perturbations."""
    contexts = sorted({k[0] for k in keys})
    rng = np.random.default_rng([seed, member])
    if len(contexts) >= 3:
        order = np.random.default_rng(seed).permutation(len(contexts))
        held = contexts[order[member % len(contexts)]]
        return [i for i, k in enumerate(keys) if k[0] == held]
    labels = sorted({k[1] for k in keys})
    n = int(np.floor(_VAL_FRACTION * len(labels)))
    if n < 1:
        return []
    held_labels = set(rng.choice(labels, n, replace=False).tolist())
    return [i for i, k in enumerate(keys) if k[1] in held_labels]


def validation_items(
    model: LearnedCorrection,
    keys: list[ConditionKey],
    val_rows: list[int],
    transfer: Transfer,
    every_row: Transfer,
) -> list[Item]:
    """Each validation condition's estimates, from the member's training conditions."""
    items = []
    for row in val_rows:
        latent = model.context_summary_[model.contexts_.index(keys[row][0]), : model.n_latent_]
        for v, fn in (
            ("context", transfer.context),
            ("combination", transfer.combination),
        ):
            est = fn(keys[row], latent)
            if est is not None:
                items.append((row, v, est))
        # From the other doses of the same treatment, held out with it (the network
        # never sees their cells; a held-out drug's doses stay out of ``transfer``).
        est = every_row.dose(keys[row])
        if est is not None:
            items.append((row, "dose", est))
        est = transfer.from_features(keys[row])
        if est is not None:
            items.append((row, "features", est))
    return items


def member_budget(model: LearnedCorrection, start: float, member: int) -> float:
    """Seconds for member ``member``: an equal share of what is left of ``time_budget``."""
    if model.time_budget is None:
        return np.inf
    remaining = int(model.n_members) - member
    return max(float(model.time_budget) - (time.monotonic() - start), 0.0) / remaining


def train_new_member(
    model: LearnedCorrection,
    member: int,
    data: tuple[Pools, list[ConditionKey], Settings],
    items: tuple[list[Item], list[Item]],
    start: float,
    device: torch.device,
    parallel: Parallel,
) -> tuple[TransitionModule, MemberResult]:
    """Seed and train member ``member`` on ``items`` (training, validation) within its budget."""
    pools, keys, settings = data
    train_items, val_items = items
    budget = parallel.from_main(member_budget(model, start, member))  # same on every rank
    deadline = time.monotonic() + budget
    seed = int(model.seed) * 1000 + member
    torch.manual_seed(seed)
    module = model._new_module().to(device)
    if train_items and (model.time_budget is None or budget > 0):
        result = train_member(
            module,
            pools,
            model._examples(train_items, keys),
            model._examples(val_items, keys) if val_items else None,
            settings,
            seed=seed,
            deadline=deadline,
            progress=bool(model.progress) and parallel.main,
            desc=f"transition {member + 1}/{int(model.n_members)}",
            parallel=parallel,
        )
        module.load_state_dict(result.state)
    else:
        result = MemberResult(
            {k: v.clone() for k, v in module.state_dict().items()},
            float("nan"),
            0,
            0,
            "nothing_to_train" if not train_items else "time_budget",
        )
    return module, result


def member_errors(
    model: LearnedCorrection,
    member: int,
    cells: TrainingCells,
    transfer: Transfer,
    items: tuple[list[Item], list[Item]],
) -> list[tuple[int, ViewError]]:
    """Member ``member``'s errors on its validation conditions (with their rows), predicted
    as :meth:`predict` would (only the kinds of estimate it was trained to correct)."""
    train_items, val_items = items
    keys = cells.keys
    member_views = {v for _, v, _ in train_items}
    errors = []
    for row, v, est in val_items:
        if v not in member_views:
            continue
        rows = cells.is_control & (cells.contexts == keys[row][0])
        # As predicted: a pair of measured parts is not corrected (calibrate on that).
        measured = v == "combination" and transfer.parts_measured(keys[row])
        effect = model._member_effect(
            member, cells.x[rows], keys[row], Estimate(est, v, measured), seed=model.seed
        )
        errors.append((row, (v, model.delta_[row] - effect)))
    return errors


def train_ensemble(
    model: LearnedCorrection,
    pools: Pools,
    cells: TrainingCells,
    checkpoint_dir: str | os.PathLike[str] | None,
    start: float,
    device: torch.device,
    parallel: Parallel | None = None,
) -> None:
    """Train (or resume) every member and calibrate the intervals; set the ensemble's fitted
    attributes on ``model`` (after each member too: its validation errors are predictions).

    ``parallel``: the ranks of a data-parallel fit (:mod:`._parallel`); only rank 0 writes
    checkpoints.
    """
    parallel = parallel or Parallel()
    keys = cells.keys
    checkpoint = Checkpoint(checkpoint_dir, fingerprint(model)) if checkpoint_dir else None
    states: list[np.ndarray] = []
    records: list[dict[str, Any]] = []
    trained_views: set[str] = set()
    val_errors: list[tuple[int, ViewError]] = []
    settings = train_settings(model)
    every_row = model._transfer()
    for member in range(int(model.n_members)):
        module = model._new_module().to(device)
        val_rows = validation_rows(keys, model.seed, member)
        fit_rows = [i for i in range(len(keys)) if i not in set(val_rows)]
        transfer = model._transfer(fit_rows, controls=model._fit_controls, share="fit")
        train_items = [(fit_rows[r], v, est) for r, v, est in transfer.views(model.seed + member)]
        val_items = validation_items(model, keys, val_rows, transfer, every_row)
        trained_views |= {v for _, v, _ in train_items}
        if not train_items:
            # Nothing to correct (e.g. one context, no combinations, no features): the
            # module stays at zero and the model is the classical estimate.
            val_items = []
        resumed = checkpoint.load(member) if checkpoint else None
        if resumed is not None:
            flat, record = resumed
            set_flat(module, flat, device)
        else:
            module, result = train_new_member(
                model,
                member,
                (pools, keys, settings),
                (train_items, val_items),
                start,
                device,
                parallel,
            )
            record = member_record(result, val_rows, keys)
            flat = get_flat(module)
            # A member cut short by the time budget is not finished: it is not stored, so
            # a later fit with the same folder trains it in full (as an uninterrupted fit).
            if checkpoint and result.stopped != "time_budget" and parallel.main:
                checkpoint.save(member, flat, record)
        states.append(flat)
        records.append(record)
        model.member_weights_ = np.vstack(states)  # the members so far, for predictions
        model.training_ = records
        model.param_shapes_ = [[k, list(v.shape)] for k, v in module.state_dict().items()]
        model.trained_views_ = [v for v in VIEWS if v in trained_views]
        val_errors += member_errors(model, member, cells, transfer, (train_items, val_items))
    calibrate_intervals(model, val_errors)


def calibrate_intervals(model: LearnedCorrection, val_errors: list[tuple[int, ViewError]]) -> None:
    """Set the intervals' calibration ``q`` and the in-domain widening slope (:mod:`._domain`)
    from the members' validation errors, each scored as held out."""
    if not val_errors:
        # No held-out predictions: calibrate the classical errors against themselves.
        transfer = model._transfer(controls=model._fit_controls)
        errors = held_out_errors(transfer, model.delta_, model.seed)
        model.calibration_ = calibrate(errors, model.error_var_, float(model.interval))
        return
    scorer = model._domain_scorer()
    held_out = scorer.held_out()
    reference = references(model.domain_)
    scores = [
        validation_score(scorer, held_out, row, view, reference) for row, (view, _) in val_errors
    ]
    q, slope = calibrate_domain(
        [e for _, e in val_errors], scores, model.error_var_, float(model.interval)
    )
    model.calibration_ = q
    model.domain_ = {**model.domain_, "slope": slope}


def fingerprint(model: LearnedCorrection) -> str:
    """What a checkpoint must match to be resumed: parameters (but the compute settings),
    genes, training effects and latent space."""
    params = {
        k: v
        for k, v in model.get_params().items()
        if k not in ("progress", "device", "n_threads", "time_budget")
    }
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    digest.update(json.dumps(model.genes_).encode())
    digest.update(np.ascontiguousarray(model.delta_, dtype=np.float64).tobytes())
    digest.update(np.ascontiguousarray(model.pca_components_, dtype=np.float64).tobytes())
    return digest.hexdigest()


def member_record(
    result: MemberResult, val_rows: list[int], keys: list[ConditionKey]
) -> dict[str, Any]:
    """What ``training_`` keeps of a member's training."""
    return {
        "best_val": None if not np.isfinite(result.best_val) else float(result.best_val),
        "best_step": int(result.best_step),
        "steps": int(result.steps),
        "stopped": result.stopped,
        "validation": sorted({f"{keys[r][0]}|{keys[r][1]}|{keys[r][2]}" for r in val_rows}),
        "views": list(VIEWS) if result.views is None else [VIEWS[v] for v in result.views],
    }
