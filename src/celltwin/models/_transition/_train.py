"""Training of one ensemble member: sampled cell sets, a distribution loss, early stopping.

A training example is a (training condition, view) pair: the condition's true cells in the
latent space, its context's control cells, and the classical estimate of its effect computed as
if it were held out (see :mod:`._features`). Each step draws ``cells`` control cells and
``cells`` true cells per example, generates ``z + b + r`` and minimises the energy distance
between generated and true sets plus the squared distance of their means, plus a small penalty
on ``r`` (the correction must earn its size). Validation examples come from training data only
(conditions held out of this member's fit); training stops when their loss has not improved for
``patience`` evaluations, when ``max_steps`` is reached, or at the deadline (``time_budget``).
The best state is then checked view by view (:func:`view_gate`): a kind of estimate whose
validation examples the correction makes worse is left uncorrected by this member.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from ..._progress import progress_bar
from ._module import TransitionModule, energy_distance
from ._parallel import Parallel, scale_shared


@dataclass
class Examples:
    """Tensors describing a set of training examples (rows aligned)."""

    context: Tensor  # (E,) context index of the controls
    condition: Tensor  # (E,) condition index of the true cells
    base: Tensor  # (E, k) classical estimate, latent, scaled
    view: Tensor  # (E, V) one-hot
    index: Tensor  # (E, C) component indices (0 = unknown)
    mask: Tensor  # (E, C)
    features: Tensor  # (E, C, F)
    log_dose: Tensor  # (E, C)

    def __len__(self) -> int:
        return int(self.context.shape[0])

    def take(self, rows: Tensor | slice) -> Examples:
        return Examples(*(getattr(self, f)[rows] for f in self.__dataclass_fields__))


@dataclass
class Pools:
    """Latent training cells and which rows belong to each context's controls / condition."""

    cells: Tensor  # (N, k) scaled latent of every training cell
    summary: Tensor  # (n_contexts, 2k) control mean and sd per context
    controls: list[Tensor]  # per context: rows of its control cells
    conditions: list[Tensor]  # per condition: rows of its cells


@dataclass
class Settings:
    """Optimisation settings of one member."""

    max_steps: int
    batch_size: int
    cells: int
    lr: float
    weight_decay: float
    correction_penalty: float
    patience: int
    eval_every: int


@dataclass
class MemberResult:
    state: dict[str, Tensor]
    best_val: float
    best_step: int
    steps: int
    stopped: str  # "patience", "max_steps", "time_budget" or "no_validation"
    history: list[list[float]] = field(default_factory=list)  # [step, train, val]
    #: Indices of the views the member corrects (the others keep the classical estimate).
    views: list[int] | None = None


def draw(pool: list[Tensor], which: Tensor, m: int, generator: torch.Generator) -> Tensor:
    """``m`` row indices drawn with replacement from ``pool[which[i]]`` per example -> (E, m)."""
    out = torch.empty((len(which), m), dtype=torch.long)
    for i, w in enumerate(which.tolist()):
        rows = pool[w]
        out[i] = rows[torch.randint(len(rows), (m,), generator=generator)]
    return out


def example_losses(
    module: TransitionModule,
    pools: Pools,
    ex: Examples,
    settings: Settings,
    generator: torch.Generator,
    m: int,
    *,
    correct: bool = True,
    part: slice | None = None,
    net: torch.nn.Module | None = None,
) -> Tensor:
    """Loss of each example of ``ex`` (E,) with ``m`` sampled cells each.

    ``correct=False``: the classical estimate alone (``r = 0``), on the same draws.
    ``part``: the cells of every example are drawn (so the generator moves as in one process),
    but only the examples of ``part`` go through the network (``net``, e.g. the DDP wrapper of
    ``module``) and are returned.
    """
    ctrl = pools.cells[draw(pools.controls, ex.context, m, generator)]
    true = pools.cells[draw(pools.conditions, ex.condition, m, generator)]
    noise = torch.randn((len(ex), m, module.n_noise), generator=generator).to(ctrl.device)
    if part is not None:
        ctrl, true, noise, ex = ctrl[part], true[part], noise[part], ex.take(part)
    r = (module if net is None else net)(
        ctrl,
        pools.summary[ex.context],
        ex.base,
        (ex.index, ex.mask, ex.features, ex.log_dose),
        ex.view,
        noise,
    )
    if not correct:
        r = torch.zeros_like(r)
    generated = ctrl + ex.base.unsqueeze(1) + r
    energy = energy_distance(generated, true)
    mean_gap = ((generated.mean(1) - true.mean(1)) ** 2).sum(-1)
    penalty = (r**2).sum(-1).mean(1)
    return energy + mean_gap + settings.correction_penalty * penalty


def batch_loss(
    module: TransitionModule,
    pools: Pools,
    ex: Examples,
    settings: Settings,
    generator: torch.Generator,
    m: int,
) -> Tensor:
    """Mean loss over the examples of ``ex`` with ``m`` sampled cells each."""
    return example_losses(module, pools, ex, settings, generator, m).mean()


def view_gate(
    module: TransitionModule,
    pools: Pools,
    val: Examples | None,
    settings: Settings,
    seed: int,
) -> list[int]:
    """Views whose validation examples the correction does not make worse (indices).

    Each view's mean validation loss with the correction is compared with the classical
    estimate's on the same sampled cells. The early-stopping loss pools every view, so a
    correction that helps one kind of estimate (say, unseen singles) may still hurt another
    (combinations of seen parts); such a view is left uncorrected. Views without validation
    examples give no evidence either way and stay corrected.
    """
    n_views = module.n_views
    if val is None or len(val) == 0:
        return list(range(n_views))
    module.eval()
    losses = []
    with torch.no_grad():
        for correct in (True, False):
            generator = torch.Generator().manual_seed(seed + 104729)
            losses.append(
                example_losses(
                    module, pools, val, settings, generator, 4 * settings.cells, correct=correct
                )
            )
    which = val.view.argmax(dim=1)
    kept = []
    for v in range(n_views):
        rows = which == v
        if not bool(rows.any()) or float(losses[0][rows].mean()) <= float(losses[1][rows].mean()):
            kept.append(v)
    return kept


def train_member(
    module: TransitionModule,
    pools: Pools,
    train: Examples,
    val: Examples | None,
    settings: Settings,
    *,
    seed: int,
    deadline: float,
    progress: bool,
    desc: str,
    parallel: Parallel | None = None,
) -> MemberResult:
    """Train ``module`` in place and return its best state (by validation loss).

    ``parallel``: the ranks of a data-parallel fit (see :mod:`._parallel`); each rank passes
    the same arguments and trains on its share of every batch.
    """
    parallel = parallel or Parallel()
    net = parallel.wrap(module, next(module.parameters()).device)
    generator = torch.Generator().manual_seed(seed)
    optimizer = AdamW(list(module.parameters()), lr=settings.lr, weight_decay=settings.weight_decay)
    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
    best_val, best_step, since_best = math.inf, 0, 0
    history: list[list[float]] = []
    val_loss = _validation(module, pools, val, settings, seed)
    if val_loss is not None:
        best_val = val_loss
    stopped = "max_steps"
    bar = progress_bar(total=settings.max_steps, desc=desc, enabled=progress, leave=False)
    step = 0
    running = 0.0
    for step in range(1, settings.max_steps + 1):
        value = _step((net, module), pools, train, settings, generator, optimizer, parallel)
        running = value if step == 1 else 0.9 * running + 0.1 * value
        bar.update(1)
        if step % settings.eval_every == 0:
            val_loss = _validation(module, pools, val, settings, seed)
            history.append([step, running, math.nan if val_loss is None else val_loss])
            bar.set_postfix(loss=f"{running:.4f}", val=f"{val_loss if val_loss else 0:.4f}")
            if val_loss is not None:
                if val_loss < best_val - 1e-6:
                    best_val, best_step, since_best = val_loss, step, 0
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    since_best += 1
                    if since_best >= settings.patience:
                        stopped = "patience"
                        break
        if math.isfinite(deadline) and parallel.any(time.monotonic() > deadline):
            stopped = "time_budget"
            break
    bar.close()
    if val is None or len(val) == 0:
        best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
        best_step = step
        if stopped != "time_budget":
            stopped = "no_validation"
    module.load_state_dict(best_state)
    views = view_gate(module, pools, val, settings, seed)
    return MemberResult(best_state, best_val, best_step, step, stopped, history, views)


def _step(
    nets: tuple[torch.nn.Module, TransitionModule],
    pools: Pools,
    train: Examples,
    settings: Settings,
    generator: torch.Generator,
    optimizer: AdamW,
    parallel: Parallel,
) -> float:
    """One optimisation step on a batch of training examples; returns its loss (in a
    data-parallel fit, this rank's share of it)."""
    net, module = nets
    net.train()
    rows = (
        torch.randperm(len(train), generator=generator)[: settings.batch_size]
        if len(train) > settings.batch_size
        else torch.arange(len(train))
    )
    batch = train.take(rows)
    part = parallel.share(len(batch)) if parallel.active else None
    losses = example_losses(
        module, pools, batch, settings, generator, settings.cells, part=part, net=net
    )
    loss = scale_shared(losses, len(batch), parallel)
    module.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


class AdamW:
    """AdamW (Loshchilov & Hutter 2019), as ``torch.optim.AdamW`` with its default betas.

    Written out because ``torch.optim`` imports torch's compiler stack on first use, which
    costs seconds per process for a network this small.
    """

    def __init__(
        self,
        params: list[torch.nn.Parameter],
        *,
        lr: float,
        weight_decay: float,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> None:
        self.params = params
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1.0 - b1**self.t, 1.0 - b2**self.t
        for p, m, v in zip(self.params, self.m, self.v, strict=True):
            if p.grad is None:
                continue
            p.mul_(1.0 - self.lr * self.weight_decay)
            m.mul_(b1).add_(p.grad, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1.0 - b2)
            denom = (v / c2).sqrt_().add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / c1)


def _validation(
    module: TransitionModule,
    pools: Pools,
    val: Examples | None,
    settings: Settings,
    seed: int,
) -> float | None:
    if val is None or len(val) == 0:
        return None
    module.eval()
    # The same draws at every evaluation, so losses are comparable across steps.
    generator = torch.Generator().manual_seed(seed + 7919)
    with torch.no_grad():
        loss = batch_loss(module, pools, val, settings, generator, 2 * settings.cells)
    return float(loss)


def as_tensor(x: np.ndarray, dtype: torch.dtype = torch.float32) -> Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype)
