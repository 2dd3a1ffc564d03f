"""GEARS (PyPI ``cell-gears`` 0.1.2) side by side on the Norman suites, in three steps.

GEARS needs torch_geometric and its own pins, so it runs in its own virtual environment, on
files: celltwin writes each fold's training cells, GEARS trains on them and predicts the
held-out conditions' mean expression, celltwin scores those means with the suite's metrics.

    # 1. celltwin's venv: the folds, GEARS's gene -> GO table (from ../shared/priors), the split
    python benchmarks/gears_peer.py export --out /tmp/gears-runs
    # 2. GEARS's venv (torch 2.13 CPU + cell-gears 0.1.2 + torch_geometric)
    /tmp/venv-gears/bin/python benchmarks/gears_peer.py train --out /tmp/gears-runs --epochs 10
    # 3. celltwin's venv: per-unit scores, as the suite computes them, beside the suite's runs
    python benchmarks/gears_peer.py score --out /tmp/gears-runs

GEARS gets no file from the internet: ``gene2go_all.pkl`` is built from the shared GO
annotations (the NCBI gene2go source GEARS builds its own from), and its perturbation graph is
restricted to the measured genes plus every target of the suite (``gene_set_path``), so held-out
targets are in the graph (as prior knowledge, like the other models' GO + STRING features).
"""

from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

SUITES = ("norman2019-combinations", "norman2019-unseen-single")


def _gears_condition(perturbation: str) -> str:
    parts = perturbation.split("+")
    if perturbation == "control":
        return "ctrl"
    return "+".join(parts) if len(parts) == 2 else f"{parts[0]}+ctrl"


def export(out: Path) -> None:
    """Write each fold's training cells (GEARS layout), its held-out conditions and the GO table."""
    import numpy as np
    import pandas as pd
    from anndata import AnnData

    from celltwin._settings import shared_dir
    from celltwin.benchmark import get_suite

    out.mkdir(parents=True, exist_ok=True)
    go = pd.read_csv(shared_dir() / "priors" / "go_gene2go_human.tsv.gz", sep="\t")
    gene2go = go.groupby("symbol")["go_id"].apply(lambda s: set(map(str, s))).to_dict()
    with open(out / "gene2go_all.pkl", "wb") as fh:
        pickle.dump(gene2go, fh)
    for name in SUITES:
        task = get_suite(name).task
        for fold in task.folds():
            fd = task.fold_data(fold)
            where = out / name / fold
            where.mkdir(parents=True, exist_ok=True)
            train = fd.train[:, list(fd.genes)]
            x = train.X.toarray() if hasattr(train.X, "toarray") else np.asarray(train.X)
            obs = pd.DataFrame(
                {
                    "condition": [
                        _gears_condition(p) for p in train.obs["perturbation"].astype(str)
                    ],
                    "cell_type": "K562",
                },
                index=train.obs_names.astype(str),
            )
            var = pd.DataFrame({"gene_name": list(fd.genes)}, index=list(fd.genes))
            AnnData(x.astype(np.float32), obs=obs, var=var).write_h5ad(where / "train.h5ad")
            held = sorted(set(fd.conditions["perturbation"].astype(str)))
            targets = sorted(
                {
                    g
                    for p in set(train.obs["perturbation"].astype(str)) | set(held)
                    for g in p.split("+")
                }
                - {"control"}
            )
            (where / "fold.json").write_text(json.dumps({"held_out": held, "targets": targets}))
            print(f"exported {name} {fold}: {train.n_obs} training cells, {len(held)} held out")


def _series_indexable(x):
    """``x`` (CSR) whose rows can be picked with a boolean pandas Series, as GEARS 0.1.2 does."""
    import pandas as pd
    import scipy.sparse as sp

    class SeriesCSR(sp.csr_matrix):
        def __getitem__(self, key):
            if isinstance(key, pd.Series):
                key = key.to_numpy()
            return super().__getitem__(key)

    return SeriesCSR(x)


def train(out: Path, *, epochs: int, seed: int) -> None:
    """Train GEARS on every exported fold and write its predicted means (``pred.csv``)."""
    import os
    import time

    import anndata
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp
    import torch
    from gears import GEARS, PertData

    torch.manual_seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (GEARS draws control cells from the global state)
    # GEARS writes its GO graph to ./data/go_essential_<name>.csv (one for all folds: every fold
    # has the same genes and targets).
    os.chdir(out)
    Path("data").mkdir(exist_ok=True)
    for name in SUITES:
        for where in sorted((out / name).iterdir()):
            meta = json.loads((where / "fold.json").read_text())
            adata = anndata.read_h5ad(where / "train.h5ad")
            adata.X = sp.csr_matrix(adata.X)  # GEARS calls X.toarray()
            data_path = where / "gears"
            data_path.mkdir(exist_ok=True)
            (data_path / "gene2go_all.pkl").write_bytes((out / "gene2go_all.pkl").read_bytes())
            genes = list(adata.var["gene_name"]) + meta["targets"]
            with open(where / "genes.pkl", "wb") as fh:
                pickle.dump(genes, fh)
            start = time.time()
            pert_data = PertData(str(data_path), gene_set_path=str(where / "genes.pkl"))
            pert_data.new_data_process(dataset_name="fold", adata=adata)
            conditions = sorted(set(adata.obs["condition"]))
            rng = np.random.default_rng(seed)
            val = [
                str(c) for c in rng.choice([c for c in conditions if c != "ctrl"], 3, replace=False)
            ]
            split = {"train": conditions, "val": val, "test": val}
            with open(where / "split.pkl", "wb") as fh:
                pickle.dump(split, fh)
            pert_data.prepare_split(split="custom", split_dict_path=str(where / "split.pkl"))
            pert_data.get_dataloader(batch_size=32, test_batch_size=64)
            # GEARS 0.1.2 indexes X with a pandas Series, which current scipy refuses.
            pert_data.adata.X = _series_indexable(pert_data.adata.X)
            model = GEARS(pert_data, device="cpu")
            model.model_initialize(hidden_size=64)
            model.train(epochs=epochs)
            known = set(model.pert_list)
            queries = [p.split("+") for p in meta["held_out"] if set(p.split("+")) <= known]
            preds = model.predict(queries) if queries else {}
            rows = {"+".join(q): np.asarray(preds["_".join(q)]).ravel() for q in queries}
            frame = pd.DataFrame(rows, index=list(adata.var["gene_name"])).T
            frame.to_csv(where / "pred.csv")
            refused = sorted(set(meta["held_out"]) - set(rows))
            (where / "gears.json").write_text(
                json.dumps({"seconds": time.time() - start, "refused": refused, "epochs": epochs})
            )
            print(f"{name} {where.name}: {len(rows)} predicted, refused {refused}", flush=True)


def score(out: Path) -> None:
    """Score GEARS's means per unit with the suite's metrics (``scores.csv``)."""
    import numpy as np
    import pandas as pd
    from anndata import AnnData

    from celltwin.benchmark import get_suite
    from celltwin.eval import evaluate

    frames = []
    for name in SUITES:
        suite = get_suite(name)
        task = suite.task
        for fold in task.folds():
            where = out / name / fold
            if not (where / "pred.csv").is_file():
                continue
            pred = pd.read_csv(where / "pred.csv", index_col=0)
            if pred.empty:
                continue
            fd = task.fold_data(fold)
            obs = pd.DataFrame(
                {"context": "K562", "perturbation": list(pred.index)},
                index=[f"gears{i}" for i in range(len(pred))],
            )
            control = fd.query[:, list(pred.columns)]
            cells = AnnData(
                np.vstack(
                    [
                        pred.to_numpy(np.float32),
                        np.asarray(
                            control.X.todense() if hasattr(control.X, "todense") else control.X,
                            dtype=np.float32,
                        ),
                    ]
                ),
                obs=pd.concat([obs, control.obs[["context", "perturbation"]].astype(str)]),
                var=pd.DataFrame(index=list(pred.columns)),
            )
            metrics = [
                m for m in suite.metrics if m in ("pearson_delta", "pearson_delta_top20_de", "mae")
            ]
            result = evaluate(fd.truth, cells, train=fd.train, metrics=metrics, allow_missing=True)
            long = result.per_perturbation.copy()  # long: perturbation, context, metric, value
            long["suite"], long["fold"], long["model"] = name, fold, "gears"
            frames.append(long)
    out_table = pd.concat(frames, ignore_index=True)
    out_table.to_csv(out / "scores.csv", index=False)
    print(out_table.groupby(["suite", "metric"])["value"].agg(["mean", "count"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=("export", "train", "score"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.step == "export":
        export(args.out)
    elif args.step == "train":
        train(args.out, epochs=args.epochs, seed=args.seed)
    else:
        score(args.out)


if __name__ == "__main__":
    main()
