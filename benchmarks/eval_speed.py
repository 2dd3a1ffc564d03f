"""Wall time of ``celltwin evaluate`` vs ``cell-eval run`` on a VCC-sized dataset, end to end.

Data (generated with numpy, seeded): 200 perturbations x 100 cells + 2,000 control cells, 18,080
genes; negative-binomial counts (about 22% non-zero), normalised to 1e4 per cell and log1p'ed,
float32 CSR. The prediction is the truth's perturbed cells with Gaussian noise (sigma 0.3, floored
at 0.001) on every non-zero log1p value, plus the truth's control cells (real controls, as the VCC
requires). Both files are written in cell-eval's layout (obs ``target_gene``, controls
``non-targeting``) with :func:`celltwin.eval.write_vcc`, so both tools read the same files with
their defaults.

Each pair is timed as two subprocesses of the command-line tools (imports, reading, DE, metrics
and writing included), one after the other on the same (warm) files and the same cores. Before
timing, ``celltwin evaluate`` runs once on a tiny dataset: its DE kernels are compiled by numba on
first use and cached on disk (once per install; the time is printed as the warm-up). The 1-minute
load average is sampled every 2 s during each timed run and its mean printed, since the machine
may be shared:

- ``vcc``: the three VCC metrics (mae, des, pds), like for like: ``cell-eval run --profile vcc``
  vs ``celltwin evaluate --metrics mae,des,pds --no-ceiling``.
- ``full``: cell-eval's default profile (``full``: 27 DE and expression metrics, among them
  overlap/precision at N, 50, ..., 500, PR/ROC AUC, the three discrimination scores, energy
  distance correlation and clustering agreement) vs celltwin's default metrics (19: mae, mse,
  des, pds, pearson_delta, GEARS, Systema centroid accuracy, rank metrics, n_sig_spearman) plus
  both baselines; similar work (two DE tests dominate both), not the same metrics.
- celltwin extras (no cell-eval counterpart timed): default metrics with the split-half ceiling.

Usage::

    python benchmarks/eval_speed.py                      # vcc and full pairs, ~30-60 min
    python benchmarks/eval_speed.py --profiles vcc       # like for like only
    python benchmarks/eval_speed.py --n-perts 20 --n-genes 2000 --profiles vcc   # quick check

``celltwin evaluate`` is called through the installed ``celltwin`` script when it has the
command; otherwise through ``python -c "celltwin.eval.evaluate_files(...)"`` (same work minus
the typer parsing, said in the output).
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from celltwin._keys import CONTEXT, CONTROL, CRISPRI, PERTURBATION, PERTURBATION_TYPE, TARGET_SUM
from eval_first_call import timed_run  # the same timer and load sampler (stdlib only)

try:
    from celltwin.eval import write_vcc
except ImportError:  # not yet re-exported
    from celltwin.eval._export import write_vcc

# cell-eval's names of the VCC metrics, to check both tools computed the same values.
CELL_EVAL_NAMES = {"mae": "mae", "des": "overlap_at_N", "pds": "discrimination_score_l1"}


def generate(
    *,
    seed: int = 0,
    n_perts: int = 200,
    cells: int = 100,
    n_control: int = 2000,
    n_genes: int = 18080,
    density: float = 0.2,
) -> tuple[ad.AnnData, ad.AnnData]:
    """Truth and prediction (canonical AnnData, log1p CP10k in float32 CSR)."""
    rng = np.random.default_rng(seed)
    genes = np.array([f"GENE{j:05d}" for j in range(n_genes)])
    rate = np.exp(rng.normal(np.log(density) - 0.5, 1.6, n_genes)).clip(1e-3, 200)
    targets = rng.choice(np.flatnonzero(rate > 0.5), n_perts, replace=False)
    labels = np.concatenate([[CONTROL] * n_control, np.repeat(genes[targets], cells)])
    groups, inverse = np.unique(labels, return_inverse=True)
    # Sparse effects of random strength; the target gene knocked down.
    lfc = np.where(
        rng.random((groups.size, n_genes)) < 0.03,
        rng.normal(0, 0.8, (groups.size, n_genes)),
        0.0,
    ) * rng.uniform(0, 1.5, (groups.size, 1))
    lfc[groups == CONTROL] = 0.0
    position = {g: j for j, g in enumerate(genes.tolist())}
    for i, g in enumerate(groups.tolist()):
        if g != CONTROL:
            lfc[i, position[g]] = -2.0
    size = rng.lognormal(0.0, 0.3, labels.size)
    blocks = []
    for start in range(0, n_genes, 2000):
        mean = rate[None, start : start + 2000] * np.exp(lfc[inverse, start : start + 2000])
        mean *= size[:, None]
        counts = rng.poisson(rng.gamma(4.0, mean / 4.0)).astype(np.float32)
        blocks.append(sp.csc_matrix(counts))
    counts = sp.hstack(blocks).tocsr()
    totals = np.asarray(counts.sum(axis=1)).ravel()
    X = sp.diags((TARGET_SUM / np.maximum(totals, 1)).astype(np.float32)) @ counts
    X = X.tocsr().astype(np.float32)
    X.data = np.log1p(X.data)

    def adata(matrix: sp.csr_matrix, lab: np.ndarray, prefix: str) -> ad.AnnData:
        obs = pd.DataFrame(
            {
                PERTURBATION: lab,
                PERTURBATION_TYPE: np.where(lab == CONTROL, CONTROL, CRISPRI),
                CONTEXT: "H1",
            },
            index=[f"{prefix}{i}" for i in range(lab.size)],
        )
        out = ad.AnnData(X=matrix, obs=obs)
        out.var_names = genes
        return out

    truth = adata(X, labels, "cell")
    noisy = X.copy()
    noise = rng.normal(0.0, 0.3, noisy.data.size)
    noisy.data = np.maximum(noisy.data + noise, 1e-3).astype(np.float32)  # stays non-zero
    perturbed = np.flatnonzero(labels != CONTROL)
    control = np.flatnonzero(labels == CONTROL)
    pred_X = sp.vstack([noisy[perturbed], X[control]], format="csr")
    pred = adata(pred_X, np.append(labels[perturbed], labels[control]), "pred")
    return truth, pred


def _celltwin_command(
    truth: Path, pred: Path, out: Path, extra: list[str]
) -> tuple[list[str], list[str], str]:
    """The command run, the ``celltwin evaluate`` command line it stands for, and how it runs."""
    exe = shutil.which("celltwin") or str(Path(sys.executable).with_name("celltwin"))
    probe = subprocess.run([exe, "evaluate", "--help"], capture_output=True, text=True)
    args = ["--truth", str(truth), "--pred", str(pred), "--out", str(out), *extra]
    cli = [exe, "evaluate", *args]
    if probe.returncode == 0:
        return cli, cli, "celltwin CLI"
    options = {"metrics": None, "ceiling": True}
    if "--metrics" in extra:
        options["metrics"] = extra[extra.index("--metrics") + 1].split(",")
    if "--no-ceiling" in extra:
        options["ceiling"] = False
    code = (
        "import sys\n"
        "try:\n    from celltwin.eval import evaluate_files\n"
        "except ImportError:\n    from celltwin.eval._evaluate import evaluate_files\n"
        f"evaluate_files({str(truth)!r}, {str(pred)!r}, out={str(out)!r}, "
        f"metrics={options['metrics']!r}, ceiling={options['ceiling']!r})\n"
    )
    return [sys.executable, "-c", code], cli, "python -c evaluate_files(...): no CLI command yet"


def _warm_up(work: Path) -> float:
    """Run ``celltwin evaluate`` once on a tiny dataset: numba compiles (or loads) its kernels."""
    small = work / "warm_up"
    small.mkdir(exist_ok=True)
    truth, pred = generate(seed=1, n_perts=3, cells=20, n_control=40, n_genes=300)
    write_vcc(truth, small / "truth.h5ad")
    write_vcc(pred, small / "pred.h5ad")
    cmd, _, _ = _celltwin_command(
        small / "truth.h5ad", small / "pred.h5ad", small / "out", ["--metrics", "mae,des,pds"]
    )
    seconds, _ = timed_run(cmd, small / "celltwin.log")
    return seconds


def _agreement(ct_out: Path, ce_out: Path) -> dict[str, float]:
    """Largest per-perturbation difference of the VCC metrics between the two tools."""
    ours = pd.read_csv(ct_out / "metrics.csv")
    ours = ours.pivot_table(index=PERTURBATION, columns="metric", values="value")
    theirs = pd.read_csv(ce_out / "results.csv").set_index("perturbation").loc[ours.index]
    return {
        m: float(np.max(np.abs(ours[m].to_numpy() - theirs[CELL_EVAL_NAMES[m]].to_numpy())))
        for m in CELL_EVAL_NAMES
        if m in ours.columns and CELL_EVAL_NAMES[m] in theirs.columns
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep data and outputs here")
    parser.add_argument(
        "--reuse", action="store_true", help="reuse truth.h5ad and pred.h5ad already in --out"
    )
    parser.add_argument("--profiles", default="vcc,full", help="comma-separated: vcc, full")
    parser.add_argument("--no-extras", action="store_true", help="skip the celltwin-only runs")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cell-eval", default=None, help="cell-eval executable")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-perts", type=int, default=200)
    parser.add_argument("--cells", type=int, default=100)
    parser.add_argument("--n-control", type=int, default=2000)
    parser.add_argument("--n-genes", type=int, default=18080)
    args = parser.parse_args()
    cell_eval = args.cell_eval or shutil.which("cell-eval")
    if cell_eval is None:
        candidate = Path(sys.executable).with_name("cell-eval")
        cell_eval = str(candidate) if candidate.exists() else None
    if cell_eval is None:
        parser.error("cell-eval not found: pip install 'cell-eval==0.8.*' or pass --cell-eval")

    with tempfile.TemporaryDirectory() as scratch:
        work = args.out or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        truth_path, pred_path = work / "truth.h5ad", work / "pred.h5ad"
        if not (args.reuse and truth_path.is_file() and pred_path.is_file()):
            start = time.perf_counter()
            truth, pred = generate(
                seed=args.seed,
                n_perts=args.n_perts,
                cells=args.cells,
                n_control=args.n_control,
                n_genes=args.n_genes,
            )
            write_vcc(truth, truth_path)
            write_vcc(pred, pred_path)
            print(f"generated in {time.perf_counter() - start:.0f} s", flush=True)
            del truth, pred
        truth = ad.read_h5ad(truth_path, backed="r")
        n_perts = truth.obs["target_gene"].nunique() - 1
        n_control = int((truth.obs["target_gene"] == "non-targeting").sum())
        nnz = truth.X.group["data"].shape[0]
        print(
            f"data: {n_perts} perturbations, {truth.n_obs - n_control} perturbed + {n_control} "
            f"control cells, {truth.n_vars} genes, {nnz / (truth.n_obs * truth.n_vars):.1%} "
            f"non-zero, float32 CSR ({truth_path.stat().st_size / 2**30:.2f} GiB per file)",
            flush=True,
        )
        truth.file.close()
        del truth
        for path in (truth_path, pred_path):  # same warm page cache for both tools
            path.read_bytes()

        ce_common = ["-ap", str(pred_path), "-ar", str(truth_path)]
        ce_common += ["--num-threads", str(args.threads)]
        pairs = {
            "vcc": (["--metrics", "mae,des,pds", "--no-ceiling"], ["--profile", "vcc"]),
            "full": (["--no-ceiling"], ["--profile", "full"]),
        }
        warm = _warm_up(work)
        print(
            f"celltwin warm-up on a tiny dataset (numba kernels compiled or loaded): {warm:.1f} s"
        )
        rows, commands = [], []
        for profile in [p.strip() for p in args.profiles.split(",") if p.strip()]:
            ct_extra, ce_extra = pairs[profile]
            ct_out, ce_out = work / f"celltwin_{profile}", work / f"cell_eval_{profile}"
            ct_cmd, ct_cli, how = _celltwin_command(truth_path, pred_path, ct_out, ct_extra)
            ce_cmd = [cell_eval, "run", *ce_common, *ce_extra, "-o", str(ce_out)]
            ct_s, ct_load = timed_run(ct_cmd, work / f"celltwin_{profile}.log")
            print(f"[{profile}] celltwin {ct_s:.1f} s (load average {ct_load:.1f})", flush=True)
            ce_s, ce_load = timed_run(ce_cmd, work / f"cell_eval_{profile}.log")
            print(f"[{profile}] cell-eval {ce_s:.1f} s (load average {ce_load:.1f})", flush=True)
            diff = _agreement(ct_out, ce_out) if profile == "vcc" else {}
            rows.append((profile, ct_s, ce_s, diff, ct_load, ce_load))
            commands += [(f"celltwin ({how})", ct_cli), ("cell-eval", ce_cmd)]
        extras = []
        if not args.no_extras:
            for label, extra in (("default metrics + ceiling (3 split halves)", []),):
                out = work / "celltwin_ceiling"
                cmd, cli, how = _celltwin_command(truth_path, pred_path, out, extra)
                seconds, load = timed_run(cmd, work / "celltwin_ceiling.log")
                print(f"[extra] celltwin {label}: {seconds:.1f} s (load average {load:.1f})")
                extras.append((label, seconds))
                commands.append((f"celltwin ({how})", cli))

    print(
        "\n| metrics | celltwin evaluate (s) | cell-eval run (s) | cell-eval / celltwin "
        "| load average (celltwin / cell-eval) |"
    )
    print("|---|---:|---:|---:|---:|")
    names = {
        "vcc": "VCC: mae, des, pds (like for like)",
        "full": "defaults: celltwin 19 metrics + 2 baselines / cell-eval `full` profile",
    }
    for profile, ct_s, ce_s, _, ct_load, ce_load in rows:
        print(
            f"| {names[profile]} | {ct_s:.1f} | {ce_s:.1f} | {ce_s / ct_s:.1f}x "
            f"| {ct_load:.1f} / {ce_load:.1f} |"
        )
    for label, seconds in extras:
        print(f"| celltwin {label} | {seconds:.1f} | - | - | - |")
    for profile, _, _, diff, _, _ in rows:
        if diff:
            shown = ", ".join(f"{k} {v:.1e}" for k, v in diff.items())
            print(f"\nmax |celltwin - cell-eval| per perturbation ({profile}): {shown}")
    print(
        f"\ncores: {os.cpu_count()} (cell-eval --num-threads {args.threads}); load average "
        f"at the end: {os.getloadavg()[0]:.1f}"
    )
    print("\ncommands:")
    for label, cmd in commands:
        print(f"  {label}: {shlex.join(cmd)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
