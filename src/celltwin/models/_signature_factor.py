"""A learned signature model: context and perturbation factors on top of the ridge transfer.

:class:`SignatureFactor` (registry name ``signature_factor``) is a hybrid. Its first stage is the
classical :class:`~celltwin.models.ContextTransferLinear` prediction; its second stage is a small
torch factor model of what that prediction gets wrong (:class:`ResidualFactorNet`, tensors only,
in :mod:`._factor_net`), trained on out-of-fold predictions of the training rows and stopped
early on a validation split of those rows.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd
import torch
from torch import nn

from .._keys import CONTEXT, PERTURBATION
from ._context_transfer import ContextTransferLinear, crossfit_transfer
from ._errors import ModelFormatError, UnseenConditionError
from ._factor_net import ResidualFactorNet, _standardised, _tensor, _threads
from ._model import expect_shape
from ._signature_data import SignatureData
from ._signature_model import SignatureModel
from ._signature_priors import PRIORS, prior_features

#: Values of :class:`SignatureFactor`'s ``loss`` parameter.
LOSSES: Final = ("auto", "correlation", "top")
# ListNet settings of the "top" loss: temperature of the true scores (linear-rank scores lie in
# [0, 1], so the top tenth of a list carries most of the weight) and sharpness of the softmax
# over the standardised prediction.
_TOP_TEMPERATURE: Final = 0.1
_TOP_SHARPNESS: Final = 3.0


class SignatureFactor(SignatureModel):
    """Context and perturbation factors learned on the residual of the ridge context transfer.

    Prediction for (context ``c``, perturbation ``p``), over the training genes::

        score[c, p] = base[c, p] + delta[c, p]
        delta[c, p] = a[c] * (base[c, p] - mu[c]) + (e[p] + g(z[p])) @ W[c] + b[c]

    ``base`` is the :class:`ContextTransferLinear` prediction (ridge map from ``p``'s signatures
    in the other contexts, learned on the training rows) and ``mu[c]`` the context's mean
    training row; ``e[p]`` is a learned embedding of each training perturbation, ``z[p]`` its
    prior features (gene embedding of the target for genetic perturbations, fingerprint of the
    drug; see :func:`prior_features`), ``g`` a one-hidden-layer network, ``W[c]`` (``rank x
    genes``) the context factor, ``a[c]`` and ``b[c]`` a per-context rescaling of the base and a
    gene bias (:class:`ResidualFactorNet`).

    Training (training rows only):

    1. Out-of-fold base predictions of the training rows (:func:`crossfit_transfer`), so the
       residuals are those of unseen pairs, as at test time.
    2. A validation split mimicking the test task: a ``validation_fraction`` of the rows with an
       out-of-fold base (at most one per perturbation) is hidden, and so are, as training
       targets, the other rows of a hidden perturbation left in a single context. The module is
       trained (Adam, full batch) on the rest and the epoch with the lowest validation loss is
       kept (epoch 0 = no correction, so the model falls back to the base when nothing
       generalises).
    3. The module at its best epoch is kept (no refit on the validation rows: it would double
       the training time for little data).

    The loss is rank-oriented, since signatures are rankings: ``"correlation"`` (1 - Pearson
    correlation of the predicted and true rows over the measured genes) or ``"top"`` (ListNet
    cross-entropy of the true top genes under a softmax of the standardised prediction; for
    top-k lists, whose genes below the list carry no order). ``"auto"`` picks ``"top"`` when the
    rows are top-k lists (nothing missing, most genes tied at the bottom of every row).

    Predicting needs what the base needs: a training context and a perturbation measured in
    another context (else :class:`UnseenConditionError`).

    Parameters
    ----------
    prior
        Prior features: ``"auto"``, ``"gene"``, ``"drug"`` or ``"none"`` (:func:`prior_features`).
    loss
        ``"auto"``, ``"correlation"`` or ``"top"`` (above).
    rank
        Width of the perturbation and context factors.
    hidden
        Hidden width of the prior network ``g``.
    crossfit_folds
        Chunks per context for the out-of-fold base predictions.
    validation_fraction
        Share of the residual rows hidden for early stopping.
    max_epochs, patience
        Training length and early-stopping patience (epochs without a validation improvement).
    learning_rate, weight_decay
        Adam settings (defaults chosen on an inner validation split of Replogle training rows).
    seed
        Seed of the chunks, the validation draw and the initialisation.

    Fitted attributes: ``scores_`` (training rows, for the base), ``mu_`` (contexts x genes),
    ``features_`` (perturbations x prior dims), ``weights_`` (the module's parameters,
    flattened), ``scale_`` (score scale of the module), ``prior_`` (source used), ``epochs_``,
    ``validation_`` (validation loss per epoch, the first being the base's), ``contexts_``,
    ``perturbations_``.
    """

    name = "signature_factor"

    def __init__(
        self,
        prior: str = "auto",
        loss: str = "auto",
        rank: int = 16,
        hidden: int = 64,
        crossfit_folds: int = 5,
        validation_fraction: float = 0.2,
        max_epochs: int = 400,
        patience: int = 40,
        learning_rate: float = 0.001,
        weight_decay: float = 1e-3,
        seed: int = 0,
    ) -> None:
        self.prior = prior
        self.loss = loss
        self.rank = rank
        self.hidden = hidden
        self.crossfit_folds = crossfit_folds
        self.validation_fraction = validation_fraction
        self.max_epochs = max_epochs
        self.patience = patience
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.seed = seed

    # --- fit -----------------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.prior not in PRIORS:
            raise ValueError(
                f"signature_factor: 'prior' must be one of {PRIORS} (got {self.prior!r})."
            )
        if self.loss not in LOSSES:
            raise ValueError(
                f"signature_factor: 'loss' must be one of {LOSSES} (got {self.loss!r})."
            )
        for key in ("rank", "hidden", "crossfit_folds", "max_epochs", "patience"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(
                    f"signature_factor: {key!r} must be a whole number >= 1 (got {value!r})."
                )
        if int(self.crossfit_folds) < 2:
            raise ValueError(
                f"signature_factor: 'crossfit_folds' must be >= 2 (got {self.crossfit_folds!r})."
            )
        if not 0 < float(self.validation_fraction) < 1:
            raise ValueError(
                "signature_factor: 'validation_fraction' must lie in (0, 1) "
                f"(got {self.validation_fraction!r})."
            )

    def _fit(self, data: SignatureData) -> None:
        self._check_params()
        x, _ = data.filled()
        n_contexts, n_perts = len(data.contexts), len(data.perturbations)
        self.scores_: np.ndarray = data.x.copy()
        self.contexts_: list[str] = list(data.contexts)
        self.perturbations_: list[str] = list(data.perturbations)

        # Every context has training rows (SignatureData lists the rows' contexts).
        mu = np.stack([x[data.row_context == c].mean(axis=0) for c in range(n_contexts)])
        self.mu_: np.ndarray = mu

        source, features, _ = prior_features(self.perturbations_, prior=str(self.prior))
        self.prior_: str = source
        self.features_: np.ndarray = features

        base_model = ContextTransferLinear()
        base = crossfit_transfer(
            data, x, base_model, folds=int(self.crossfit_folds), seed=int(self.seed)
        )
        rows = np.flatnonzero(np.isfinite(base).all(axis=1))
        centred_base = base[rows] - mu[data.row_context[rows]]
        centred_true = x[rows] - mu[data.row_context[rows]]
        scale = float(np.sqrt(np.mean(centred_true**2))) if rows.size else 1.0
        self.scale_: float = scale if scale > 0 else 1.0
        measured = (~np.isnan(data.x[rows])).astype(np.float64)
        tensors = {
            "context": torch.as_tensor(data.row_context[rows]),
            "perturbation": torch.as_tensor(data.row_perturbation[rows]),
            "features": _tensor(features[data.row_perturbation[rows]]),
            "base": _tensor(centred_base / self.scale_),
            "full": _tensor(base[rows] / self.scale_),
            "weight": _tensor(measured / np.maximum(measured.sum(axis=1, keepdims=True), 1)),
            "truth": _tensor(_standardised(x[rows], measured)),
        }
        if self._top_lists(data):
            top = np.exp((x[rows] - x[rows].max(axis=1, keepdims=True)) / _TOP_TEMPERATURE)
            tensors["top"] = _tensor(top / top.sum(axis=1, keepdims=True))
        hidden = self._validation_rows(data, rows)
        sizes = (n_contexts, n_perts, features.shape[1], x.shape[1])
        # As for a test pair, a hidden pair's perturbation keeps its other rows as inputs, but
        # they are training targets only if it is still measured in two contexts without it.
        perts = data.row_perturbation[rows]
        n_left = (data.index >= 0).sum(axis=0) - np.bincount(perts[hidden], minlength=n_perts)
        fit_rows = ~hidden & (n_left[perts] >= 2)
        with _threads(1):
            if hidden.any() and fit_rows.any():
                net, history = self._train(tensors, sizes, train=fit_rows, valid=hidden)
                epochs = int(np.argmin(history))
            else:
                net, history, epochs = self._module(sizes), [], 0
        self.epochs_: int = epochs
        self.validation_: list[float] = [float(h) for h in history]
        # The module's parameters, flattened in their fixed order (rebuilt from the sizes).
        self.weights_: np.ndarray = (
            nn.utils.parameters_to_vector(net.parameters()).detach().numpy().copy()
        )

    def _top_lists(self, data: SignatureData) -> bool:
        """Whether to fit the top of each list (``loss``; ``"auto"``: the signatures are top-k
        lists, i.e. nothing is missing and most genes of every row tie at the bottom)."""
        if self.loss != "auto":
            return self.loss == "top"
        if np.isnan(data.x).any():
            return False
        tied = (data.x == data.x.min(axis=1, keepdims=True)).mean(axis=1)
        return bool((tied >= 0.5).all())

    def _validation_rows(self, data: SignatureData, rows: np.ndarray) -> np.ndarray:
        """Mask over ``rows``: a seeded draw, at most one row per perturbation, every context
        keeping at least two rows."""
        rng = np.random.default_rng(int(self.seed) + 1)
        n_hide = round(float(self.validation_fraction) * rows.size)
        left = np.bincount(data.row_context[rows], minlength=len(data.contexts))
        used: set[int] = set()
        mask = np.zeros(rows.size, dtype=bool)
        for i in rng.permutation(rows.size):
            if mask.sum() >= n_hide:
                break
            c, p = data.row_context[rows[i]], int(data.row_perturbation[rows[i]])
            if p in used or left[c] <= 2:
                continue
            used.add(p)
            left[c] -= 1
            mask[i] = True
        return mask

    def _module(self, sizes: tuple[int, int, int, int]) -> ResidualFactorNet:
        n_contexts, n_perts, n_features, n_genes = sizes
        torch.manual_seed(int(self.seed))
        return ResidualFactorNet(
            n_contexts, n_perts, n_features, n_genes, int(self.rank), int(self.hidden)
        )

    def _train(
        self,
        tensors: dict[str, torch.Tensor],
        sizes: tuple[int, int, int, int],
        *,
        train: np.ndarray,
        valid: np.ndarray,
    ) -> tuple[ResidualFactorNet, list[float]]:
        """Train on the ``train`` rows, recording the ``valid`` loss per epoch (index 0 = before
        training); stop after ``patience`` epochs without improvement and return the module at
        its best epoch."""
        net = self._module(sizes)
        optim = torch.optim.Adam(
            net.parameters(), lr=float(self.learning_rate), weight_decay=float(self.weight_decay)
        )
        tr = torch.as_tensor(np.flatnonzero(train))
        va = torch.as_tensor(np.flatnonzero(valid))

        def loss_of(idx: torch.Tensor) -> torch.Tensor:
            pred = net(
                tensors["context"][idx],
                tensors["perturbation"][idx],
                tensors["features"][idx],
                tensors["base"][idx],
            )
            # Rank metrics ignore each row's scale: fit the correlation with the truth.
            full = tensors["full"][idx] + pred
            w = tensors["weight"][idx]
            full = full - (w * full).sum(dim=1, keepdim=True)
            norm = torch.sqrt((w * full**2).sum(dim=1, keepdim=True) + 1e-12)
            if "top" in tensors:
                # Top lists: cross-entropy of the true top genes under a softmax of the
                # standardised prediction (ListNet), which rewards putting them first.
                logp = torch.log_softmax(_TOP_SHARPNESS * full / norm, dim=1)
                return -(tensors["top"][idx] * logp).sum(dim=1).mean()
            corr = (w * full * tensors["truth"][idx]).sum(dim=1) / norm[:, 0]
            return 1.0 - corr.mean()

        history: list[float] = []
        best_state = nn.utils.parameters_to_vector(net.parameters()).detach().clone()
        for epoch in range(int(self.max_epochs) + 1):
            with torch.no_grad():
                history.append(float(loss_of(va)))
            if history[-1] < min(history[:-1], default=np.inf):
                best_state = nn.utils.parameters_to_vector(net.parameters()).detach().clone()
            if epoch - int(np.argmin(history)) >= int(self.patience) or epoch == self.max_epochs:
                break
            optim.zero_grad()
            loss_of(tr).backward()
            optim.step()
        nn.utils.vector_to_parameters(best_state, net.parameters())
        return net, history

    # --- predict -------------------------------------------------------------------------------------

    def _base(self) -> ContextTransferLinear:
        base = ContextTransferLinear()
        base.genes_ = self.genes_
        base.pairs_ = self.pairs_
        base.scores_ = self.scores_
        return base

    def _predict(self, table: pd.DataFrame) -> np.ndarray:
        try:
            base = self._base()._predict(table)
        except UnseenConditionError as err:
            raise UnseenConditionError(f"{self.name} (base: {err})") from None
        c_of = {c: i for i, c in enumerate(self.contexts_)}
        p_of = {p: i for i, p in enumerate(self.perturbations_)}
        c = np.array([c_of[v] for v in table[CONTEXT]])
        p = np.array([p_of[v] for v in table[PERTURBATION]])
        centred = (base - self.mu_[c]) / self.scale_
        net = self._module(self._sizes())
        nn.utils.vector_to_parameters(_tensor(self.weights_), net.parameters())
        with _threads(1), torch.no_grad():
            delta = net(
                torch.as_tensor(c),
                torch.as_tensor(p),
                _tensor(self.features_[p]),
                _tensor(centred),
            ).numpy()
        return base + delta * self.scale_

    # --- persistence ---------------------------------------------------------------------------------

    def _array_names(self) -> tuple[str, ...]:
        return ("scores_", "mu_", "features_", "weights_")

    def _json_names(self) -> tuple[str, ...]:
        return ("scale_", "prior_", "epochs_", "validation_", "contexts_", "perturbations_")

    def _sizes(self) -> tuple[int, int, int, int]:
        return (
            len(self.contexts_),
            len(self.perturbations_),
            self.features_.shape[1],
            len(self.genes_),
        )

    def _check_state(self) -> None:
        super()._check_state()
        expect_shape(self, "mu_", (len(self.contexts_), len(self.genes_)))
        if self.features_.ndim != 2 or self.features_.shape[0] != len(self.perturbations_):
            raise ModelFormatError(
                f"{self.name}: array 'features_' should have {len(self.perturbations_)} rows."
            )
        size = sum(p.numel() for p in self._module(self._sizes()).parameters())
        if self.weights_.shape != (size,):
            raise ModelFormatError(
                f"{self.name}: array 'weights_' should hold {size} module parameters."
            )
