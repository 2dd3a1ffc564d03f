"""Where do ``transition``'s cell states send each held-out Kang cell type, and are the sub-states
it borrows from over-represented among stimulated cells?

The cell-state transfer (``cell_states=True``) lets each control cell of the held-out type
borrow the IFN-beta effect of the sub-states of its nearest training control cells. If the
annotation put stimulated cells of the held-out type into another type (the foundation issue's
warning about CD14 monocytes), those cells would sit in a sub-state of that type with many more
stimulated than control cells, and borrowing from it would flatter the fold. Per fold this
prints the share of the held-out cells' neighbour slots in each source type, and the
neighbour-weighted ratio of a borrowed sub-state's treated/control cell counts to its type's
(1 = the sub-state is as frequent among stimulated as among control cells), with the share of
slots in sub-states more than twice as frequent among stimulated cells.

    .venv/bin/python benchmarks/kang_states_composition.py > composition.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from celltwin._keys import CONTEXT, CONTROL, PERTURBATION
from celltwin.benchmark import get_suite
from celltwin.models._transition._estimator import _QueryContexts
from kang_transfer_variants import SUITE, Fold


def fold_row(name: str) -> dict[str, object]:
    f = Fold(name)
    model = f.model
    states = model._states()
    assert states is not None
    obs = get_suite(SUITE).task.fold_data(name).train.obs
    ctx = obs[CONTEXT].astype(str).to_numpy()
    ctrl = obs[PERTURBATION].astype(str).to_numpy() == CONTROL
    index = {c: j for j, c in enumerate(states.names)}
    # The held-out type's control cells are training cells (only its stimulated cells are held
    # out), so the model takes them from its own pool, as it does when it predicts.
    if name in index:
        cells = states.cells_of(index[name])
    else:
        cells = _QueryContexts(model, f.query, np.full(len(f.query), name)).cell_latents()[name]
    counts = states.counts(cells, [index[c] for c in f.sources])
    total = sum(float(v.sum()) for v in counts.values())
    keys = list(zip(model.conditions_[CONTEXT], model.conditions_[PERTURBATION], strict=True))
    share, ratio_sum, over = {}, 0.0, 0.0
    for j, n in counts.items():
        c = states.names[j]
        share[c] = float(n.sum()) / total
        overall = float((~ctrl & (ctx == c)).sum()) / float((ctrl & (ctx == c)).sum())
        row = next(i for i, k in enumerate(keys) if k[0] == c)
        for s in range(len(n)):
            own = np.flatnonzero((states.index[:, 0] == row) & (states.index[:, 1] == s))
            if len(own) == 0 or n[s] == 0:
                ratio = 1.0  # the context-wide effect: no sub-state composition involved
            else:
                n_ctrl, n_treated = states.cells[own[0]]
                ratio = (n_treated / n_ctrl) / overall
            ratio_sum += n[s] * ratio
            over += n[s] * (ratio > 2.0)
    row = {f"share {c}": share.get(c, 0.0) for c in f.sources}
    row["relative stimulated/control ratio"] = ratio_sum / total
    row["slots in sub-states > 2x"] = over / total
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", nargs="*", default=None, help="default: all cell types")
    args = parser.parse_args()
    folds = args.folds or get_suite(SUITE).folds()
    rows = {}
    for fold in folds:
        print(f"{fold} ...", file=sys.stderr, flush=True)
        rows[fold] = fold_row(fold)
    table = pd.DataFrame(rows).T.fillna(0.0)
    shares = sorted(c for c in table.columns if c.startswith("share "))
    table = table[shares + [c for c in table.columns if c not in shares]]
    print("\n### Where the held-out cells' neighbours are (cell-state transfer)\n")
    print(table.astype(float).round(2).to_markdown())


if __name__ == "__main__":
    main()
