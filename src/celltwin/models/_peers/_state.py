"""Arc Institute's State Transition model (``state tx``) inside celltwin's model contract.

The adapter does what ``state tx train`` does, in process and on the split's training cells only:
it writes them where cell-load reads them (an ``.h5ad`` with ``target_gene`` / ``non-targeting``,
``cell_type`` and ``gem_group`` columns, features in ``X`` or ``obsm['X_hvg']``) next to a TOML
data config, composes State's own Hydra defaults (``configs/model/state.yaml``,
``configs/training/default.yaml``, ``configs/data/perturbation.yaml``) with the adapter's
parameters, builds cell-load's ``PerturbationDataModule`` and State's Lightning module with
State's factory functions and trains with a Lightning ``Trainer``. Prediction follows
``state tx infer``: sets of control cells of one context, all with the same perturbation one-hot,
go through the network's ``predict_step``.

Nothing is pickled: the trained network's state dict is kept in celltwin's safetensors file and
the network is rebuilt from the JSON config on load (``state tx train`` itself writes pickles and
``torch.save`` files, which the adapter never produces nor reads).
"""

from __future__ import annotations

import copy
import tempfile
from pathlib import Path
from typing import Any, ClassVar, Final, Literal, cast

import numpy as np
import pandas as pd
from anndata import AnnData

from ..._keys import CONTROL
from .._conditions import condition_keys
from .._errors import ModelFormatError, UnseenConditionError
from ._common import (
    check_manifest,
    check_n_threads,
    check_positive,
    condition_label,
    pack_state_dict,
    peer_labels,
    plain,
    quiet,
    resolve_device,
    seeded,
    unpack_state_dict,
)
from ._peer import PeerModel
from ._state_inputs import (
    STATE_CONTROL,
    close_data_module,
    state_config,
    write_inputs,
)

#: ``output_space`` -> ``data.kwargs.embed_key``: "all" reads the genes from X and predicts
#: them directly; "gene" reads them from obsm['X_hvg'] (State's VCC/Replogle recipe).
_EMBED_KEY: Final[dict[str, str | None]] = {"all": None, "gene": "X_hvg"}
#: State's inference clips gene-space predictions to this range (``state tx infer``).
_CLIP: Final = (0.0, 14.0)


class StateTransitionModel(PeerModel):
    """Arc Institute's State Transition (ST) model, trained and run through celltwin.

    ST embeds each control cell and the perturbation one-hot, lets a bidirectional Llama
    transformer attend across a *set* of cells of one context and perturbation, and is trained
    with an energy distance between predicted and observed sets (Adduri et al. 2025). The
    perturbation is a one-hot over the training perturbations, so only perturbations seen in
    training can be predicted (others raise :class:`UnseenConditionError`); the context enters
    only through its control cells, so unseen contexts are predicted from their controls, as in
    State's zero-shot setting. Contexts with control cells but no perturbed training cells are
    declared ``[zeroshot] "celltwin.<context>" = "test"`` in the TOML, so their controls are
    training data exactly as cell-load does for a held-out cell type.

    Parameters
    ----------
    output_space
        ``"all"`` (default): the model reads ``X`` (the training genes, e.g. 2,000 HVGs) and
        predicts every gene directly, as a residual on the control cell in gene space
        (``data.kwargs.embed_key=null``, ``data.kwargs.output_space=all``). ``"gene"``: State's
        VCC/Replogle recipe, features in ``obsm['X_hvg']`` (``embed_key=X_hvg``,
        ``output_space=gene``), residual added in the hidden space. On Kang 2018 (held-out CD4 T
        cells, 2,000 HVGs) "gene" collapsed the predicted cells to a fraction of the true
        spread while "all" matched it, so "all" is the default.
    max_steps
        Optimiser steps (``training.max_steps``; State's default is 400,000 on GPUs).
    batch_size
        Cell sets per step (``training.batch_size``).
    cell_set_len
        Cells per set (``model.kwargs.cell_set_len``; 512 in ``state.yaml``, 128 in
        ``state_sm.yaml``).
    hidden_dim
        Width of the transformer (``model.kwargs.hidden_dim``); the Llama backbone gets
        ``4 * hidden_dim`` as intermediate size and ``hidden_dim // n_heads`` as head size.
    n_layers, n_heads
        Transformer layers and attention heads.
    lr
        Adam learning rate (``training.lr``).
    device
        ``"auto"`` (a GPU when torch sees one, else CPU), ``"cpu"`` or ``"cuda"``.
    seed
        Seeds training (``training.train_seed``, cell-load's sampler and torch).
    n_threads
        torch CPU threads while fitting and predicting (``None``: leave torch's setting).
    verbose
        Show State's, cell-load's and Lightning's output (progress bar, model summary).

    Notes
    -----
    Differences from ``state tx train``, all about running rather than modelling: no wandb, CSV
    logger, checkpoints or validation loop (celltwin evaluates separately); data loading in the
    main process (``num_workers=0``) with a small HDF5 chunk cache (cell-load's default of
    1,000,003 slots costs milliseconds per lookup, and it reads every cell on its own; its faster
    ``use_consecutive_loading`` fails on contexts with fewer control cells than
    ``cell_set_len`` in cell-load 0.10.4); the gene decoder is not built
    (``gene_decoder_bool=False`` as in ``state_sm.yaml``: with genes as features it would receive
    no training signal) and the unused token table of the Llama backbone has 3 rows, not 32,000.
    Cell sets come from one ``gem_group`` (batches are not used by State's default random
    control mapping).
    Prediction splits a condition's control cells into sets of at most ``cell_set_len`` cells of
    near-equal size (``state tx infer`` leaves a remainder set), and clips to [0, 14] as it does.
    ``"control"`` conditions return the drawn control cells unchanged, as celltwin's baselines.

    References
    ----------
    Adduri, Gautam, ... Goodarzi & Roohani, "Predicting cellular responses to perturbation
    across diverse contexts with State", bioRxiv 2025; github.com/ArcInstitute/state.
    """

    name: ClassVar[str] = "state"
    predicts: ClassVar[Literal["cells"]] = "cells"
    _peer_modules: ClassVar[tuple[str, ...]] = ("state.tx.utils", "cell_load.utils.modules")

    def __init__(
        self,
        *,
        output_space: Literal["all", "gene"] = "all",
        max_steps: int = 400,
        batch_size: int = 8,
        cell_set_len: int = 64,
        hidden_dim: int = 128,
        n_layers: int = 4,
        n_heads: int = 4,
        lr: float = 3e-4,
        device: str = "auto",
        seed: int = 0,
        n_threads: int | None = None,
        verbose: bool = False,
    ) -> None:
        self.output_space = output_space
        self.max_steps = max_steps
        self.batch_size = batch_size
        self.cell_set_len = cell_set_len
        self.hidden_dim = hidden_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.lr = lr
        self.device = device
        self.seed = seed
        self.n_threads = n_threads
        self.verbose = verbose

    # --- fit ----------------------------------------------------------------------------------

    def _check_params(self) -> None:
        if self.output_space not in _EMBED_KEY:
            raise ValueError(
                f"{self.name}: 'output_space' must be one of {sorted(_EMBED_KEY)} "
                f"(got {self.output_space!r})."
            )
        check_positive(
            {
                "max_steps": self.max_steps,
                "batch_size": self.batch_size,
                "cell_set_len": self.cell_set_len,
                "hidden_dim": self.hidden_dim,
                "n_layers": self.n_layers,
                "n_heads": self.n_heads,
            },
            model=self.name,
        )
        if self.hidden_dim % self.n_heads:
            raise ValueError(
                f"{self.name}: 'hidden_dim' ({self.hidden_dim}) must be a multiple of 'n_heads' "
                f"({self.n_heads})."
            )
        if not float(self.lr) > 0:
            raise ValueError(f"{self.name}: 'lr' must be > 0 (got {self.lr!r}).")
        check_n_threads(self.n_threads, model=self.name)
        resolve_device(self.device, model=self.name)

    def _fit(self, train: AnnData, **fit_params: Any) -> None:
        self._check_params()
        self._require()
        labels = peer_labels(train.obs)
        if (labels == STATE_CONTROL).any():
            raise ValueError(
                f"{self.name}.fit: a perturbation is named {STATE_CONTROL!r}, State's control "
                "label. Fix: rename it."
            )
        if (labels == CONTROL).all():
            raise ValueError(
                f"{self.name}.fit: no perturbed training cells. Fix: include perturbed cells in "
                "the training split."
            )
        from cell_load.utils.modules import get_datamodule
        from state.tx.utils import get_lightning_module

        device = resolve_device(self.device, model=self.name)
        with (
            tempfile.TemporaryDirectory(prefix="celltwin-state-") as tmp,
            quiet(self.verbose),
            seeded(self.seed, n_threads=self.n_threads),
        ):
            toml_path = write_inputs(
                Path(tmp), train, labels, embed_key=_EMBED_KEY[self.output_space]
            )
            cfg = state_config(
                self.get_params(),
                toml_path,
                embed_key=_EMBED_KEY[self.output_space],
                device=device,
            )
            data_module = get_datamodule(
                cfg["data"]["name"],
                cfg["data"]["kwargs"],
                batch_size=cfg["training"]["batch_size"],
                cell_sentence_len=cfg["model"]["kwargs"]["cell_set_len"],
            )
            try:
                data_module.setup(stage="fit")
                spec = _network_spec(cfg, data_module.get_var_dims())
                # State's factory adds keys to the dicts it is given: keep a clean copy.
                network = get_lightning_module(
                    spec["model_type"],
                    copy.deepcopy(spec["data_config"]),
                    copy.deepcopy(spec["model_config"]),
                    copy.deepcopy(spec["training_config"]),
                    copy.deepcopy(spec["var_dims"]),
                )
                trainer = _trainer(cfg, device=device, verbose=self.verbose)
                trainer.fit(network, datamodule=data_module)
                pert_map = data_module.pert_onehot_map
            finally:
                close_data_module(data_module)
        network = network.cpu().eval()
        # cell-load one-hot encodes the sorted labels: row i of the identity is label i.
        pert_labels = sorted(pert_map)
        eye = np.eye(len(pert_labels))
        if any(not np.array_equal(pert_map[p].numpy(), eye[i]) for i, p in enumerate(pert_labels)):
            raise RuntimeError(f"{self.name}: cell-load's perturbation one-hots are not sorted.")
        self.pert_labels_: list[str] = pert_labels
        self.network_spec_: dict[str, Any] = spec
        self.weights_, self.tensors_ = pack_state_dict(network.state_dict())
        self.n_steps_: int = int(trainer.global_step)
        self._network = network

    # --- predict ------------------------------------------------------------------------------

    def _network_for_predict(self) -> Any:
        network = getattr(self, "_network", None)
        if network is None:
            self._require()
            from state.tx.utils import get_lightning_module

            spec = self.network_spec_
            with quiet(self.verbose):
                network = get_lightning_module(
                    spec["model_type"],
                    copy.deepcopy(spec["data_config"]),
                    copy.deepcopy(spec["model_config"]),
                    copy.deepcopy(spec["training_config"]),
                    copy.deepcopy(spec["var_dims"]),
                )
            network.load_state_dict(unpack_state_dict(self.weights_, self.tensors_), strict=True)
            network = network.cpu().eval()
            self._network = network
        return network

    def _predict_conditions(
        self, conditions: pd.DataFrame, controls: list[np.ndarray]
    ) -> list[np.ndarray]:
        keys = condition_keys(conditions)
        index = {p: i for i, p in enumerate(self.pert_labels_)}
        unseen = sorted({condition_label(p, d) for _, p, d in keys if p != CONTROL} - set(index))
        if unseen:
            raise UnseenConditionError(
                f"{self.name} cannot predict perturbation(s) {unseen[:5]}: State encodes "
                f"perturbations as one-hots over the training perturbations "
                f"({len(index) - 1} known). Fix: predict only perturbations with training "
                "cells, or use 'linear' for unseen perturbations."
            )
        import torch

        network = self._network_for_predict()
        width = len(self.pert_labels_)
        outputs = []
        with quiet(self.verbose), seeded(self.seed, n_threads=self.n_threads), torch.no_grad():
            for (_, perturbation, dose), x in zip(keys, controls, strict=True):
                if perturbation == CONTROL or x.shape[0] == 0:
                    outputs.append(x.copy())
                    continue
                onehot = torch.zeros(width, dtype=torch.float32)
                onehot[index[condition_label(perturbation, dose)]] = 1.0
                n_sets = -(-x.shape[0] // int(self.cell_set_len))
                parts = []
                for rows in np.array_split(np.arange(x.shape[0]), n_sets):
                    batch = {
                        "ctrl_cell_emb": torch.as_tensor(x[rows], dtype=torch.float32),
                        "pert_emb": onehot.repeat(rows.size, 1),
                        "pert_name": [perturbation] * rows.size,
                    }
                    out = network.predict_step(batch, batch_idx=0, padded=False)["preds"]
                    parts.append(out.reshape(rows.size, -1).double().numpy())
                outputs.append(np.clip(np.vstack(parts), *_CLIP))
        return outputs

    # --- persistence --------------------------------------------------------------------------

    def _array_names(self) -> tuple[str, ...]:
        return ("weights_",)

    def _json_names(self) -> tuple[str, ...]:
        return ("pert_labels_", "network_spec_", "tensors_", "n_steps_")

    def _check_state(self) -> None:
        super()._check_state()
        self._network = None
        if self.weights_.ndim != 1:
            raise ModelFormatError(f"{self.name}: 'weights' must be 1-D.")
        check_manifest(self.tensors_, size=int(self.weights_.size))
        labels = self.pert_labels_
        if not isinstance(labels, list) or STATE_CONTROL not in labels:
            raise ModelFormatError(f"{self.name}: 'pert_labels' must list {STATE_CONTROL!r}.")
        spec = self.network_spec_
        if not isinstance(spec, dict) or set(spec) != {
            "model_type",
            "data_config",
            "model_config",
            "training_config",
            "var_dims",
        }:
            raise ModelFormatError(f"{self.name}: 'network_spec' is incomplete.")
        dims = spec["var_dims"]
        n_genes = len(self.genes_)
        if dims.get("input_dim") != n_genes or dims.get("output_dim") != n_genes:
            raise ModelFormatError(
                f"shape mismatch in saved {self.name!r} model: the network reads "
                f"{dims.get('input_dim')} and writes {dims.get('output_dim')} genes, model.json "
                f"lists {n_genes}. The directory is damaged or was edited; save the model again."
            )
        if dims.get("gene_names") != list(self.genes_):
            raise ModelFormatError(f"{self.name}: the network's genes differ from the model's.")
        if dims.get("pert_dim") != len(labels):
            raise ModelFormatError(f"{self.name}: 'pert_dim' differs from the perturbation count.")

    def _prediction_info(self) -> dict[str, Any]:
        return {"n_steps": int(self.n_steps_)}


def _network_spec(cfg: dict[str, Any], var_dims: Any) -> dict[str, Any]:
    """What rebuilds the network on load: model type, configs and the data's dimensions."""
    spec = {
        "model_type": cfg["model"]["name"],
        "data_config": {
            k: cfg["data"]["kwargs"][k] for k in ("embed_key", "output_space", "control_pert")
        }
        | {"basal_mapping_strategy": cfg["data"]["kwargs"]["basal_mapping_strategy"]},
        "model_config": cfg["model"]["kwargs"],
        "training_config": cfg["training"],
        "var_dims": var_dims,
    }
    return cast(dict[str, Any], plain(spec))


def _trainer(cfg: dict[str, Any], *, device: str, verbose: bool) -> Any:
    """The Lightning trainer of ``state tx train`` (no validation, logging or checkpoints)."""
    import lightning.pytorch as pl

    return pl.Trainer(
        accelerator="gpu" if device == "cuda" else "cpu",
        devices=1,
        max_steps=int(cfg["training"]["max_steps"]),
        gradient_clip_val=cfg["training"]["gradient_clip_val"],
        accumulate_grad_batches=cfg["training"]["gradient_accumulation_steps"],
        limit_val_batches=0,
        num_sanity_val_steps=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=verbose,
        enable_model_summary=verbose,
        use_distributed_sampler=False,
        deterministic=False,
    )
