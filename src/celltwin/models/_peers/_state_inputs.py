"""What State reads: the training cells as an ``.h5ad``, a TOML data config, the Hydra config.

The ``.h5ad`` has ``target_gene`` / ``non-targeting``, ``cell_type`` and ``gem_group`` columns
(features in ``X`` or ``obsm['X_hvg']``); contexts without perturbed training cells are declared
``[zeroshot]`` test contexts so their controls reach prediction.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any, Final, cast

import numpy as np
import pandas as pd
import scipy.sparse as sp
from anndata import AnnData

from ..._keys import CONTEXT, CONTROL

#: Column names and control label of the files cell-load reads (the layout of State's examples).
PERT_COL: Final = "target_gene"
CELL_TYPE_COL: Final = "cell_type"
BATCH_COL: Final = "gem_group"
STATE_CONTROL: Final = "non-targeting"
#: Name of the one dataset in the TOML config.
DATASET: Final = "celltwin"


def write_inputs(
    folder: Path, train: AnnData, labels: np.ndarray, *, embed_key: str | None
) -> Path:
    """Write the training cells as cell-load reads them, and the TOML naming them; return it."""
    data_dir = folder / "data"
    data_dir.mkdir()
    x: Any = train.X  # scipy sparse or numpy: both types are used below
    x = sp.csr_matrix(x, dtype=np.float32) if sp.issparse(x) else np.asarray(x, np.float32)
    genes = [str(g) for g in train.var_names]
    contexts = train.obs[CONTEXT].astype(str).to_numpy()
    obs = pd.DataFrame(
        {
            PERT_COL: pd.Categorical(np.where(labels == CONTROL, STATE_CONTROL, labels)),
            CELL_TYPE_COL: pd.Categorical(contexts),
            BATCH_COL: pd.Categorical(np.full(train.n_obs, "0")),
        },
        index=pd.Index([f"cell{i}" for i in range(train.n_obs)]),
    )
    var = pd.DataFrame({"gene_name": genes}, index=pd.Index(genes))
    if embed_key is None:
        adata = AnnData(X=x, obs=obs, var=var)
    else:
        dense = x.toarray() if sp.issparse(x) else x
        adata = AnnData(X=x, obs=obs, var=var, obsm={embed_key: dense})
    adata.write_h5ad(data_dir / f"{DATASET}.h5ad")

    # Contexts with controls only: their perturbed cells are what predict is asked for; declared
    # zero-shot test cell types, cell-load keeps their controls as training data (VCC setup).
    perturbed = set(contexts[labels != CONTROL])
    held_out = sorted(set(contexts) - perturbed)
    lines = [
        "[datasets]",
        f"{DATASET} = {_toml_string(str(data_dir))}",
        "",
        "[training]",
        f'{DATASET} = "train"',
        "",
        "[zeroshot]",
        *(f'{_toml_string(f"{DATASET}.{c}")} = "test"' for c in held_out),
        "",
    ]
    path = folder / "config.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _toml_string(text: str) -> str:
    """A TOML basic string (quotes and backslashes escaped)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def close_data_module(data_module: Any) -> None:
    """Close the HDF5 files cell-load keeps open and drop its cached metadata of them."""
    from cell_load.utils.data_utils import GlobalH5MetadataCache

    for group in (data_module.train_datasets, data_module.val_datasets, data_module.test_datasets):
        for subset in group:
            handle = getattr(subset.dataset, "h5_file", None)
            if handle is not None:
                handle.close()
    cache = GlobalH5MetadataCache()._cache
    for path in [p for p in cache if "celltwin-state-" in p]:
        del cache[path]


def state_config(
    params: Mapping[str, Any], toml_path: Path, *, embed_key: str | None, device: str
) -> dict[str, Any]:
    """State's Hydra defaults with the adapter's parameters, resolved to plain dicts."""
    from omegaconf import OmegaConf

    root = files("state.configs")
    cfg = OmegaConf.create(
        {
            "model": OmegaConf.load(str(root / "model" / "state.yaml")),
            "training": OmegaConf.load(str(root / "training" / "default.yaml")),
            "data": OmegaConf.load(str(root / "data" / "perturbation.yaml")),
        }
    )
    overrides = {
        "data": {
            "kwargs": {
                "toml_config_path": str(toml_path),
                "embed_key": embed_key,
                "output_space": params["output_space"],
                "pert_col": PERT_COL,
                "cell_type_key": CELL_TYPE_COL,
                "batch_col": BATCH_COL,
                "control_pert": STATE_CONTROL,
                "num_workers": 0,
                "pin_memory": False,
                "barcode": False,
                # cell-load's default HDF5 chunk cache has 1,000,003 slots, allocated at
                # every dataset lookup (~4 ms each); a small file needs few.
                "h5_open_kwargs": {"rdcc_nbytes": 16 * 2**20, "rdcc_nslots": 10_007},
                "random_seed": int(params["seed"]),
            }
        },
        "training": {
            "batch_size": int(params["batch_size"]),
            "lr": float(params["lr"]),
            "max_steps": int(params["max_steps"]),
            "train_seed": int(params["seed"]),
            "wandb_track": False,
        },
        "model": {
            "device": device,
            "kwargs": {
                "cell_set_len": int(params["cell_set_len"]),
                "hidden_dim": int(params["hidden_dim"]),
                "gene_decoder_bool": False,
                "transformer_backbone_kwargs": {
                    "intermediate_size": 4 * int(params["hidden_dim"]),
                    "num_hidden_layers": int(params["n_layers"]),
                    "num_attention_heads": int(params["n_heads"]),
                    "num_key_value_heads": int(params["n_heads"]),
                    "head_dim": int(params["hidden_dim"]) // int(params["n_heads"]),
                    # State feeds inputs_embeds; its token table (32,000 rows by default)
                    # is frozen zeros and never read, so keep it minimal.
                    "vocab_size": 3,
                },
            },
        },
    }
    merged = OmegaConf.merge(cfg, OmegaConf.create(overrides))
    return cast(dict[str, Any], OmegaConf.to_container(merged, resolve=True))
