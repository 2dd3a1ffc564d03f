"""scGen (Lotfollahi, Wolf & Theis 2019) inside celltwin's model contract.

scGen 2.1.0 (the current release) was written for scvi-tools 0.x; with scvi-tools 1.4 it needs
three fixes, applied here at run time and nowhere else (see :func:`_import_scgen` and
:class:`_compat_module_class`):

1. ``scgen._scgenvae`` imports ``Literal`` from ``scvi._compat``, removed in scvi-tools 1.0: a
   stand-in module is put in ``sys.modules`` while scgen is imported, then removed.
2. It imports ``LossRecorder`` from ``scvi.module.base``, replaced by ``LossOutput`` in
   scvi-tools 0.20: a stand-in building a ``LossOutput`` from scGen's ``(loss, rl, kld)`` is set
   on ``scvi.module.base`` while scgen is imported, then removed.
3. scvi-tools 1.x reads the latent mean and variance as ``qzm`` / ``qzv`` from
   ``module.inference``; scGen's module returns ``qz_m`` / ``qz_v``, so
   ``get_latent_representation`` (and scGen's ``predict``) fail. The adapter's scGen models use
   a subclass of ``SCGENVAE`` returning both names; the class itself is not changed.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import types
import typing
from collections.abc import Iterator
from typing import Any, ClassVar, Final, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from ..._keys import CONTEXT, CONTROL
from .._conditions import condition_keys
from .._errors import ModelFormatError, UnseenConditionError
from .._model import expect_shape
from ._common import (
    check_manifest,
    check_n_threads,
    check_positive,
    condition_label,
    import_peer,
    pack_state_dict,
    peer_labels,
    quiet,
    resolve_device,
    seeded,
    unpack_state_dict,
)
from ._peer import PeerModel

#: scGen's condition labels (``obs['condition']`` of its tutorials).
CTRL_KEY: Final = "control"
STIM_KEY: Final = "stimulated"
_CONDITION: Final = "condition"
_CELL_TYPE: Final = "cell_type"
#: The decoder's last layer in scGen's state dict: its rows are the genes.
_OUTPUT_LAYER: Final = "decoder.linear_out.weight"
_IMPORT_LOCK = threading.Lock()


def _import_scgen() -> types.ModuleType:
    """Import scgen with fixes 1 and 2 of the module docstring in place during the import only."""
    if sys.modules.get("scgen") is not None:
        return sys.modules["scgen"]
    scvi = import_peer("scvi", model="scgen")
    base = import_peer("scvi.module.base", model="scgen")
    with _IMPORT_LOCK:
        added_compat = "scvi._compat" not in sys.modules
        added_recorder = not hasattr(base, "LossRecorder")
        if added_compat:
            compat = types.ModuleType("scvi._compat")
            compat.Literal = typing.Literal  # type: ignore[attr-defined]
            sys.modules["scvi._compat"] = compat
        if added_recorder:

            def loss_recorder(loss: Any, rl: Any, kld: Any, kl_global: Any = None) -> Any:
                return base.LossOutput(
                    loss=loss,
                    reconstruction_loss=rl,
                    kl_local=kld,
                    **({} if kl_global is None else {"kl_global": kl_global}),
                )

            base.LossRecorder = loss_recorder  # type: ignore[attr-defined]
        try:
            return import_peer("scgen", model="scgen")
        finally:
            if added_compat:
                sys.modules.pop("scvi._compat", None)
                if getattr(scvi, "_compat", None) is not None:
                    del scvi._compat
            if added_recorder:
                del base.LossRecorder


@contextlib.contextmanager
def _scvi_seed(seed: int) -> Iterator[None]:
    """Set ``scvi.settings.seed`` for the block (without its global reseeding side effects).

    scvi-tools draws the train/validation split from ``np.random.RandomState(settings.seed)``;
    its default ``None`` makes every fit differ. The public setter also calls
    ``seed_everything`` and edits environment variables, so the stored value is set directly.
    """
    settings = import_peer("scvi", model="scgen").settings
    if not hasattr(settings, "_seed"):  # another scvi-tools layout: leave it alone
        yield
        return
    previous = settings._seed
    settings._seed = seed
    try:
        yield
    finally:
        settings._seed = previous


_COMPAT_CLASS: list[type] = []


def _compat_module_class() -> type:
    """``SCGENVAE`` whose ``inference`` also returns the names scvi-tools 1.x reads (fix 3)."""
    if not _COMPAT_CLASS:
        scgen = _import_scgen()

        class CompatSCGENVAE(scgen.SCGENVAE):  # type: ignore[name-defined]  # runtime module
            def inference(self, x: Any) -> dict[str, Any]:
                outputs = super().inference(x)
                outputs["qzm"] = outputs["qz_m"]
                outputs["qzv"] = outputs["qz_v"]
                return outputs

        _COMPAT_CLASS.append(CompatSCGENVAE)
    return _COMPAT_CLASS[0]


class ScGenModel(PeerModel):
    """scGen: a VAE whose latent shift between stimulated and control cells is transferred.

    For each perturbation ``p`` (with its dose, if any) one scGen model is trained on the training
    control cells of every context and the training cells of ``p`` (``obs['condition']`` =
    ``"control"`` / ``"stimulated"``, ``obs['cell_type']`` = context). Its ``delta`` is scGen's
    own: ``SCGEN.predict(ctrl_key, stim_key, ...)`` balances the cell types of the control and of
    the stimulated cells, subsamples both to the same size and takes the difference of their mean
    latent codes. A condition ``(c, p)`` is predicted as scGen's latent arithmetic on the control
    cells drawn from context ``c``: ``decode(encode_mean(x) + delta_p)``, the computation of
    ``predict(..., adata_to_predict=controls)``, clipped at 0 (log expression).

    scGen is defined for one perturbation against control, hence one model per perturbation;
    perturbations without training cells cannot be predicted (:class:`UnseenConditionError`).
    Any context with control cells can: scGen's question is the unseen cell type. ``"control"``
    conditions return the drawn control cells unchanged, as celltwin's baselines.

    Parameters
    ----------
    n_hidden, n_latent, n_layers, dropout_rate
        scGen's network (``SCGEN(adata, n_hidden=800, n_latent=100, n_layers=2,
        dropout_rate=0.2)`` by default, as in scGen).
    max_epochs, batch_size, early_stopping, early_stopping_patience
        ``SCGEN.train`` (scGen's tutorial: 100 epochs, batch size 32, early stopping with
        patience 25 on scvi-tools' 10 % validation cells).
    lr
        Adam learning rate (scvi-tools' training plan; 1e-3 by default).
    device
        ``"auto"`` (a GPU when torch sees one, else CPU), ``"cpu"`` or ``"cuda"``.
    seed
        Seeds torch, numpy and Python's generators during fit (scGen's balancing draws from
        ``np.random``).
    n_threads
        torch CPU threads while fitting and predicting (``None``: leave torch's setting).
    verbose
        Show scvi-tools' and Lightning's output.

    References
    ----------
    Lotfollahi, Wolf & Theis, "scGen predicts single-cell perturbation responses", Nat Methods
    16:715 (2019); github.com/theislab/scgen (2.1.0).
    """

    name: ClassVar[str] = "scgen"
    predicts: ClassVar[Literal["cells"]] = "cells"
    _peer_modules: ClassVar[tuple[str, ...]] = ("scvi",)

    def __init__(
        self,
        *,
        n_hidden: int = 800,
        n_latent: int = 100,
        n_layers: int = 2,
        dropout_rate: float = 0.2,
        max_epochs: int = 100,
        batch_size: int = 32,
        early_stopping: bool = True,
        early_stopping_patience: int = 25,
        lr: float = 1e-3,
        device: str = "auto",
        seed: int = 0,
        n_threads: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.n_hidden = n_hidden
        self.n_latent = n_latent
        self.n_layers = n_layers
        self.dropout_rate = dropout_rate
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.early_stopping = early_stopping
        self.early_stopping_patience = early_stopping_patience
        self.lr = lr
        self.device = device
        self.seed = seed
        self.n_threads = n_threads
        self.verbose = verbose

    # --- fit ----------------------------------------------------------------------------------

    def _check_params(self) -> None:
        check_positive(
            {
                "n_hidden": self.n_hidden,
                "n_latent": self.n_latent,
                "n_layers": self.n_layers,
                "max_epochs": self.max_epochs,
                "batch_size": self.batch_size,
                "early_stopping_patience": self.early_stopping_patience,
            },
            model=self.name,
        )
        if not 0.0 <= float(self.dropout_rate) < 1.0:
            raise ValueError(
                f"{self.name}: 'dropout_rate' must be in [0, 1) (got {self.dropout_rate!r})."
            )
        if not float(self.lr) > 0:
            raise ValueError(f"{self.name}: 'lr' must be > 0 (got {self.lr!r}).")
        check_n_threads(self.n_threads, model=self.name)
        resolve_device(self.device, model=self.name)

    def _fit(self, train: AnnData, **fit_params: Any) -> None:
        self._check_params()
        self._require()
        scgen = _import_scgen()
        module_class = _compat_module_class()
        x = train.X.toarray() if sp.issparse(train.X) else np.asarray(train.X)
        x = np.asarray(x, dtype=np.float32)
        labels = peer_labels(train.obs)
        perturbations = sorted(set(labels) - {CONTROL})
        if not perturbations:
            raise ValueError(
                f"{self.name}.fit: no perturbed training cells. Fix: include perturbed cells in "
                "the training split."
            )
        contexts = train.obs[CONTEXT].astype(str).to_numpy()
        device = resolve_device(self.device, model=self.name)
        is_control = labels == CONTROL
        weights, deltas, epochs = [], [], []
        manifest: list[list[Any]] = []
        with (
            quiet(self.verbose),
            seeded(self.seed, n_threads=self.n_threads),
            _scvi_seed(int(self.seed)),
        ):
            for perturbation in perturbations:
                rows = np.flatnonzero(is_control | (labels == perturbation))
                adata = _pair_data(train, x, rows, is_control=is_control, contexts=contexts)
                model = self._train_pair(scgen, module_class, adata, device=device)
                # scGen's own delta (balanced, equal-size mean latent codes); the one cell
                # handed over only satisfies predict's signature.
                _, delta = model.predict(
                    ctrl_key=CTRL_KEY, stim_key=STIM_KEY, adata_to_predict=adata[:1].copy()
                )
                model.module.cpu().eval()
                flat, manifest = pack_state_dict(model.module.state_dict())
                weights.append(flat)
                deltas.append(np.asarray(delta, dtype=np.float64).reshape(-1))
                epochs.append(int(model.trainer.current_epoch) if model.trainer else 0)
        self.perturbations_: list[str] = perturbations
        self.weights_: np.ndarray = np.vstack(weights)
        self.deltas_: np.ndarray = np.vstack(deltas)
        self.tensors_: list[list[Any]] = manifest
        self.epochs_: list[int] = epochs
        self._modules: dict[int, Any] = {}

    def _train_pair(self, scgen: Any, module_class: Any, adata: AnnData, *, device: str) -> Any:
        """One scGen model trained on the controls and one perturbation's cells (``adata``)."""
        scgen.SCGEN.setup_anndata(adata, batch_key=_CONDITION, labels_key=_CELL_TYPE)
        model = scgen.SCGEN(adata, **self._network_params())
        model.module = module_class(n_input=adata.n_vars, **self._network_params())
        model.train(
            max_epochs=int(self.max_epochs),
            batch_size=int(self.batch_size),
            accelerator="gpu" if device == "cuda" else "cpu",
            devices=1,
            early_stopping=bool(self.early_stopping),
            early_stopping_patience=int(self.early_stopping_patience),
            plan_kwargs={"lr": float(self.lr)},
            enable_progress_bar=bool(self.verbose),
        )
        return model

    def _network_params(self) -> dict[str, Any]:
        return {
            "n_hidden": int(self.n_hidden),
            "n_latent": int(self.n_latent),
            "n_layers": int(self.n_layers),
            "dropout_rate": float(self.dropout_rate),
        }

    # --- predict ------------------------------------------------------------------------------

    def _module(self, i: int) -> Any:
        modules = getattr(self, "_modules", None)
        if modules is None:
            modules = self._modules = {}
        if i not in modules:
            self._require()
            module = _compat_module_class()(n_input=len(self.genes_), **self._network_params())
            module.load_state_dict(unpack_state_dict(self.weights_[i], self.tensors_), strict=True)
            modules[i] = module.cpu().eval()
        return modules[i]

    def _predict_conditions(
        self, conditions: pd.DataFrame, controls: list[np.ndarray]
    ) -> list[np.ndarray]:
        keys = condition_keys(conditions)
        index = {p: i for i, p in enumerate(self.perturbations_)}
        unseen = sorted({condition_label(p, d) for _, p, d in keys if p != CONTROL} - set(index))
        if unseen:
            raise UnseenConditionError(
                f"{self.name} cannot predict perturbation(s) {unseen[:5]}: scGen transfers the "
                f"latent shift of a perturbation measured in training (known: "
                f"{self.perturbations_[:5]}). Fix: predict only perturbations with training "
                "cells, or use 'linear' for unseen perturbations."
            )
        import torch

        outputs = []
        with quiet(self.verbose), seeded(self.seed, n_threads=self.n_threads), torch.no_grad():
            for (_, perturbation, dose), x in zip(keys, controls, strict=True):
                if perturbation == CONTROL or x.shape[0] == 0:
                    outputs.append(x.copy())
                    continue
                i = index[condition_label(perturbation, dose)]
                module = self._module(i)
                latent = module.inference(torch.as_tensor(x, dtype=torch.float32))["qz_m"]
                shifted = latent + torch.as_tensor(self.deltas_[i], dtype=torch.float32)
                decoded = module.generative(shifted)["px"].double().numpy()
                outputs.append(np.maximum(decoded, 0.0))
        return outputs

    # --- persistence --------------------------------------------------------------------------

    def _array_names(self) -> tuple[str, ...]:
        return ("weights_", "deltas_")

    def _json_names(self) -> tuple[str, ...]:
        return ("perturbations_", "tensors_", "epochs_")

    def _check_state(self) -> None:
        super()._check_state()
        self._modules = {}
        perturbations = self.perturbations_
        if not isinstance(perturbations, list) or not all(
            isinstance(p, str) for p in perturbations
        ):
            raise ModelFormatError(f"{self.name}: 'perturbations' must be a list of strings.")
        n = len(perturbations)
        if self.weights_.ndim != 2 or self.weights_.shape[0] != n:
            raise ModelFormatError(
                f"{self.name}: 'weights' must hold one row per perturbation ({n})."
            )
        check_manifest(self.tensors_, size=int(self.weights_.shape[1]))
        expect_shape(self, "deltas_", (n, int(self.n_latent)))
        shapes = {name: shape for name, shape, _ in self.tensors_}
        n_out = shapes.get(_OUTPUT_LAYER, [None])[0]
        if n_out != len(self.genes_):
            raise ModelFormatError(
                f"shape mismatch in saved {self.name!r} model: the networks decode {n_out} genes, "
                f"model.json lists {len(self.genes_)}. The directory is damaged or was edited; "
                "save the model again."
            )

    def _prediction_info(self) -> dict[str, Any]:
        return {"epochs": [int(e) for e in self.epochs_]}


def _pair_data(
    train: AnnData, x: np.ndarray, rows: np.ndarray, *, is_control: np.ndarray, contexts: np.ndarray
) -> AnnData:
    """The training cells of ``rows`` as scGen reads them: condition ctrl/stim, cell type."""
    return AnnData(
        X=x[rows],
        obs=pd.DataFrame(
            {
                _CONDITION: pd.Categorical(np.where(is_control[rows], CTRL_KEY, STIM_KEY)),
                _CELL_TYPE: pd.Categorical(contexts[rows]),
            },
            index=pd.Index([f"cell{i}" for i in rows]),
        ),
        var=pd.DataFrame(index=pd.Index([str(g) for g in train.var_names])),
    )
