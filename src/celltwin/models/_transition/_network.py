"""The learned half of ``transition``: the correction network's inputs, and the cells one
ensemble member generates from a classical estimate (:class:`LearnedCorrection`)."""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import torch

from ..._keys import split_combination
from .._conditions import ConditionKey, dose_components
from ._cells import floor_at_zero, fold_detail, latent_summary, sparse_gain
from ._checkpoint import set_flat
from ._classical import ClassicalEstimate
from ._estimate import VIEWS, Estimate, log_dose
from ._module import TransitionModule
from ._params import torch_device
from ._train import Examples, as_tensor

_PERT_DIM: Final = 16


class LearnedCorrection(ClassicalEstimate):
    """The classical half plus the ensemble's correction networks (base of
    :class:`TransitionModel`, which trains them: :mod:`._ensemble`).

    Subclasses store the parameters declared here in ``__init__``.
    """

    n_noise: int
    hidden: int
    n_layers: int
    n_members: int
    max_steps: int
    cells: int
    lr: float
    correction_penalty: float
    patience: int
    interval: float
    time_budget: float | None
    device: str
    progress: bool

    member_weights_: np.ndarray
    training_: list[dict[str, Any]]
    trained_views_: list[str]
    param_shapes_: list[list[Any]]
    calibration_: float

    def _module_dims(self) -> dict[str, int]:
        return {
            "n_latent": self.n_latent_,
            "n_components": len(self.components_),
            "feature_dim": 2 * self.feature_matrix_.shape[1] if self.feature_names_ else 0,
            "n_views": len(VIEWS),
            "n_noise": int(self.n_noise),
            "hidden": int(self.hidden),
            "n_layers": int(self.n_layers),
            "pert_dim": _PERT_DIM,
        }

    def _new_module(self) -> TransitionModule:
        return TransitionModule(**self._module_dims())

    def _examples(
        self, items: list[tuple[int, str, np.ndarray]], keys: list[ConditionKey]
    ) -> Examples:
        context_index = {c: i for i, c in enumerate(self.contexts_)}
        comp_index = {c: i + 1 for i, c in enumerate(self.components_)}
        features = self._features()
        fdim = features.matrix.shape[1] if features is not None else 0
        n_comp = max([len(split_combination(keys[r][1])) for r, _, _ in items] + [1])
        n = len(items)
        index = np.zeros((n, n_comp), dtype=np.int64)
        mask = np.zeros((n, n_comp))
        feats = np.zeros((n, n_comp, 2 * fdim))
        doses = np.zeros((n, n_comp))
        view = np.zeros((n, len(VIEWS)))
        base = np.zeros((n, self.n_latent_))
        for e, (row, v, estimate) in enumerate(items):
            _, perturbation, dose = keys[row]
            parts = split_combination(perturbation)
            for j, (part, d) in enumerate(
                zip(parts, dose_components(perturbation, dose), strict=True)
            ):
                # The "features" view mimics an unseen perturbation: no learned embedding.
                index[e, j] = 0 if v == "features" else comp_index.get(part, 0)
                mask[e, j] = 1.0
                doses[e, j] = log_dose(d)
                if features is not None:
                    vec = features.vector(part, d)
                    if vec is not None:
                        feats[e, j] = vec
            view[e, VIEWS.index(v)] = 1.0
            base[e] = self._encode_delta(estimate)
        device = self._device()
        return Examples(
            context=torch.as_tensor([context_index.get(keys[r][0], 0) for r, _, _ in items]),
            condition=torch.as_tensor([r for r, _, _ in items]),
            base=as_tensor(base).to(device),
            view=as_tensor(view).to(device),
            index=torch.as_tensor(index).to(device),
            mask=as_tensor(mask).to(device),
            features=as_tensor(feats).to(device),
            log_dose=as_tensor(doses).to(device),
        )

    def _member_views(self, member: int) -> list[str]:
        """Views member ``member`` corrects (all of them in models saved before the gate)."""
        return list(self.training_[member].get("views", VIEWS))

    def _member_module(self, member: int) -> TransitionModule:
        """Member ``member``'s network on the CPU, for predictions (not to be trained).

        Built once per fitted weight matrix (a new fit or load assigns a new one): building
        it took as long as its forward pass over a batch of cells."""
        cached = self.__dict__.get("_module_cache")
        if cached is None or cached[0] is not self.member_weights_:
            cached = (self.member_weights_, {})
            self.__dict__["_module_cache"] = cached
        modules: dict[int, TransitionModule] = cached[1]
        if member not in modules:
            module = self._new_module()
            set_flat(module, self.member_weights_[member], torch.device("cpu"))
            module.eval()
            modules[member] = module
        return modules[member]

    def _corrects(self, member: int, est: Estimate) -> bool:
        """Whether member ``member``'s network corrects estimate ``est``.

        Measured conditions, combinations of parts measured in the same context, estimates of
        a kind the network never learned to correct, and kinds this member's correction made
        worse on its validation conditions (:func:`._train.view_gate`) are the classical
        estimate alone.
        """
        return not (
            est.measured
            or est.source not in self.trained_views_
            or est.source not in self._member_views(member)
        )

    def _generate(
        self,
        member: int,
        cells: np.ndarray,
        summary: np.ndarray,
        key: ConditionKey,
        est: Estimate,
        *,
        seed: int,
        offset: np.ndarray | float = 0.0,
    ) -> np.ndarray:
        """Generated cells (gene space) of member ``member`` from control cells ``cells``.

        ``offset`` is added to every generated cell before the floor at zero (:meth:`predict`:
        the gap between all the context's controls' mean and these drawn cells')."""
        if not self._corrects(member, est):
            y = cells + est.delta + fold_detail(cells, est) + offset
            return self._finish(cells, y, seed, member)
        module = self._member_module(member)
        ex = self._examples([(0, est.source, est.delta)], [key])
        ex = Examples(*(getattr(ex, f).cpu() for f in Examples.__dataclass_fields__))
        generator = torch.Generator().manual_seed(int(seed) * 1009 + member)
        z = as_tensor(self._encode(cells)).unsqueeze(0)
        noise = torch.randn((1, len(cells), module.n_noise), generator=generator)
        with torch.no_grad():
            r = module(
                z,
                as_tensor(summary).unsqueeze(0),
                ex.base,
                (ex.index, ex.mask, ex.features, ex.log_dose),
                ex.view,
                noise,
            )[0].numpy()
        correction = (r.astype(np.float64) * self.latent_scale_) @ self.pca_components_
        y = cells + est.delta + fold_detail(cells, est) + correction + offset
        return self._finish(cells, y, seed, member)

    def _generate_all(
        self,
        cells: np.ndarray,
        context: tuple[np.ndarray, np.ndarray],
        key: ConditionKey,
        est: Estimate,
        *,
        seed: int,
    ) -> np.ndarray:
        """Generated cells of the ensemble from drawn control ``cells`` (cell ``i`` from member
        ``i mod n_members``); ``context``: the context's latent summary and the mean of all its
        control cells, on which each member's share of the draw is centred."""
        summary, control_mean = context
        members = np.arange(len(cells)) % self.member_weights_.shape[0]
        out = np.empty_like(cells)
        for m in np.unique(members):
            sel = members == m
            # Each member's share of the draw is centred on all the controls' mean.
            offset = control_mean - cells[sel].mean(axis=0)
            out[sel] = self._generate(
                int(m), cells[sel], summary, key, est, seed=seed, offset=offset
            )
        return out

    def _finish(self, cells: np.ndarray, y: np.ndarray, seed: int, member: int) -> np.ndarray:
        """Generated expression ``y`` made a cell population: floored at zero keeping each
        gene's mean (:func:`floor_at_zero`), and a gene gained where the control cell had none
        gained by few cells at its usual level (:func:`sparse_gain`)."""
        rng = np.random.default_rng([int(seed), int(member), 17])
        return sparse_gain(cells, floor_at_zero(y), self.expressed_level_, rng=rng)

    def _member_effect(
        self,
        member: int,
        cells: np.ndarray,
        key: ConditionKey,
        est: Estimate,
        *,
        seed: int,
        summary: np.ndarray | None = None,
    ) -> np.ndarray:
        """Mean generated minus mean control over ``cells`` for one member."""
        if summary is None:
            summary = latent_summary(self._encode(cells))
        generated = self._generate(member, cells, summary, key, est, seed=seed)
        return generated.mean(axis=0) - cells.mean(axis=0)

    # --- settings ---------------------------------------------------------------------------
    def _device(self) -> torch.device:
        return torch_device(self.device)
