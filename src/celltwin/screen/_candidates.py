"""What a screen ranks: :class:`Candidates` and the builders of candidate lists.

Two kinds of candidate share one table. *Predicted* candidates are perturbations a model is
asked about (a gene, a pair ``A+B``, a drug at a dose); *measured* candidates are profiles
someone measured (an AnnData of pseudobulk effects, a signature file, the Connectivity Map
rank profiles), screened alongside the predicted ones as the Connectivity Map screens its
library. Builders: :func:`genes`, :func:`representable`, :func:`pairs`, :func:`pairs_of_top`,
:func:`drugs`, :func:`measured`, :func:`cmap`; :func:`concat` joins them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from anndata import AnnData

from .._keys import COMBO_SEP, CONTROL, DOSE, PERTURBATION
from .._settings import shared_dir
from ..io import format_dose, read_signatures

__all__ = [
    "KINDS",
    "Candidates",
    "cmap",
    "concat",
    "drugs",
    "genes",
    "measured",
    "pairs",
    "pairs_of_top",
    "representable",
]

#: Values of the ``kind`` column.
KINDS: Final = ("predicted", "measured")
#: Columns of :attr:`Candidates.table`, in order (``smiles`` is ``""`` except for drugs).
COLUMNS: Final = ("label", PERTURBATION, DOSE, "kind", "smiles")
#: The Connectivity Map rank profiles in the shared folder (genes x compounds, rank 1 = most up).
CMAP_FILE: Final = "data/lincs/DrugVsDisease_cmap56_rank_profiles.csv.gz"


@dataclass(frozen=True)
class Candidates:
    """Candidates of a screen: one row each, predicted by a model or measured.

    Attributes
    ----------
    table
        Columns ``label`` (unique), ``perturbation`` (canonical; pairs ``A+B`` sorted),
        ``dose`` (str, ``""`` if none), ``kind`` (``"predicted"`` or ``"measured"``) and
        ``smiles`` (a drug's structure, ``""`` otherwise; lets a model fitted with drug
        fingerprints predict drugs it never saw).
    profiles
        The measured rows' effects (log1p-space changes, or scores on a comparable scale),
        ``obs_names`` = the measured rows' labels; ``None`` when there are none. Genes a
        profile did not measure are NaN.
    """

    table: pd.DataFrame
    profiles: AnnData | None = None

    def __post_init__(self) -> None:
        table = _check_table(self.table)
        object.__setattr__(self, "table", table)
        labels = table.loc[table["kind"] == "measured", "label"].tolist()
        if not labels:
            if self.profiles is not None and self.profiles.n_obs:
                raise ValueError(
                    "Candidates: 'profiles' holds rows but no row of 'table' is measured. "
                    "Fix: build measured candidates with celltwin.screen.measured(...)."
                )
            return
        if self.profiles is None:
            raise ValueError(
                f"Candidates: {len(labels)} measured rows but 'profiles' is None. Fix: build "
                "them with celltwin.screen.measured(...)."
            )
        missing = sorted(set(labels) - set(self.profiles.obs_names))
        if missing:
            raise ValueError(
                f"Candidates: measured labels {missing[:5]} have no row in 'profiles' "
                "(obs_names). Fix: profiles.obs_names must be the measured rows' labels."
            )

    def __len__(self) -> int:
        return len(self.table)

    def __repr__(self) -> str:
        counts = self.table["kind"].value_counts()
        return (
            f"Candidates({len(self)} rows: {int(counts.get('predicted', 0))} predicted, "
            f"{int(counts.get('measured', 0))} measured)"
        )


def _check_table(table: Any) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"Candidates.table must be a DataFrame (got {type(table).__name__})")
    out = table.copy()
    if "smiles" not in out.columns:
        out["smiles"] = ""
    absent = [c for c in COLUMNS if c not in out.columns]
    if absent:
        raise ValueError(
            f"Candidates.table lacks columns {absent}. Fix: build it with the builders of "
            "celltwin.screen (genes, pairs, drugs, measured, ...)."
        )
    out = out[list(COLUMNS)].astype(str).reset_index(drop=True)
    bad = sorted(set(out["kind"]) - set(KINDS))
    if bad:
        raise ValueError(f"Candidates.table['kind'] holds {bad}; allowed: {KINDS}.")
    dup = out["label"][out["label"].duplicated()].unique().tolist()
    if dup:
        raise ValueError(
            f"Candidates: duplicate labels {dup[:5]}. Fix: give each library its own prefix "
            "(measured(..., prefix='lib:')) or drop the repeats."
        )
    empty = out["perturbation"].str.strip() == ""
    if empty.any():
        raise ValueError(f"Candidates: {int(empty.sum())} rows with an empty 'perturbation'.")
    return out


def _predicted(perturbations: Sequence[str], doses: Sequence[str] | None = None) -> Candidates:
    doses = [""] * len(perturbations) if doses is None else list(doses)
    labels = [p if not d else f"{p}:{d}" for p, d in zip(perturbations, doses, strict=True)]
    table = pd.DataFrame(
        {"label": labels, PERTURBATION: list(perturbations), DOSE: doses, "kind": "predicted"}
    )
    return Candidates(table)


def _names(names: Iterable[str] | str, *, key: str) -> list[str]:
    """A clean list of distinct names (order kept); refuses strings, empties and 'control'."""
    if isinstance(names, str):
        raise TypeError(f"'{key}' must be a list of names, not one string (got {names!r})")
    out = [str(n).strip() for n in names]
    if not out or any(not n for n in out):
        raise ValueError(f"'{key}' must hold at least one non-empty name (got {out[:5]})")
    if CONTROL in out:
        raise ValueError(f"'{key}' holds {CONTROL!r}, which is no perturbation. Fix: drop it.")
    dup = sorted({n for n in out if out.count(n) > 1})
    if dup:
        raise ValueError(f"'{key}' names {dup[:5]} more than once. Fix: list each once.")
    return out


def genes(names: Iterable[str]) -> Candidates:
    """One predicted candidate per gene (or any perturbation name), without dose.

    Examples
    --------
    >>> genes(["STAT1", "JAK2"]).table["label"].tolist()
    ['STAT1', 'JAK2']
    """
    return _predicted(_names(names, key="names"))


def pairs(names: Iterable[str]) -> Candidates:
    """Every unordered pair ``A+B`` (sorted) of distinct ``names``.

    Examples
    --------
    >>> pairs(["B", "A", "C"]).table["perturbation"].tolist()
    ['A+B', 'B+C', 'A+C']
    """
    listed = _names(names, key="names")
    if len(listed) < 2:
        raise ValueError(f"pairs need at least two names (got {listed})")
    return _predicted([COMBO_SEP.join(sorted(pair)) for pair in combinations(listed, 2)])


def pairs_of_top(result: Any, n: int) -> Candidates:
    """Every pair of a screen's ``n`` best predicted single perturbations.

    Parameters
    ----------
    result
        A :class:`~celltwin.screen.ScreenResult` (its ``table``, ranked).
    n
        How many of its best predicted singles (no ``+`` in the perturbation) to pair.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 2:
        raise ValueError(f"'n' must be an integer >= 2 (got {n!r}). Fix: e.g. n=10.")
    table = getattr(result, "table", None)
    if not isinstance(table, pd.DataFrame) or "rank" not in table.columns:
        raise TypeError("'result' must be a ScreenResult (from celltwin.screen.screen).")
    rows = table.sort_values("rank")
    rows = rows[(rows["kind"] == "predicted") & ~rows[PERTURBATION].str.contains(COMBO_SEP)]
    singles = list(dict.fromkeys(rows[PERTURBATION].astype(str)))[:n]
    if len(singles) < 2:
        raise ValueError(
            f"the screen has {len(singles)} predicted single perturbations; pairs need two"
        )
    return pairs(singles)


def representable(model: Any) -> Candidates:
    """Every perturbation a fitted model can represent, as predicted candidates.

    The training perturbations (each at its training doses) and, for a model with prior gene
    features (``transition`` with a gene prior such as GO+STRING: ``feature_source_`` not
    ``"none"``/``"external"``), every gene of the prior, so about 20,000 genes can be screened.
    Drugs come from a library instead (:func:`drugs`).
    """
    conditions = getattr(model, "conditions_", None)
    if not isinstance(conditions, pd.DataFrame):
        raise TypeError(
            f"representable needs a fitted cell model (got {type(model).__name__}). Fix: "
            "fit it first, or list the candidates with genes([...])."
        )
    pairs_ = conditions[[PERTURBATION, DOSE]].astype(str).drop_duplicates()
    pairs_ = pairs_[pairs_[PERTURBATION] != CONTROL]
    perturbations, doses = pairs_[PERTURBATION].tolist(), pairs_[DOSE].tolist()
    source = str(getattr(model, "feature_source_", "none"))
    if source not in ("none", "external"):
        seen = set(perturbations)
        extra = [str(g) for g in getattr(model, "feature_names_", []) if str(g) not in seen]
        perturbations += extra
        doses += [""] * len(extra)
    return _predicted(perturbations, doses)


def drugs(library: pd.DataFrame | str | os.PathLike[str], doses: Sequence[float]) -> Candidates:
    """Every drug of a library at every dose of a grid (micromolar).

    Parameters
    ----------
    library
        A DataFrame with columns ``name`` and ``smiles``, or a CSV file: headerless
        ``name,SMILES[,...]`` rows (as ``celltwin fit --drugs``) or with a header naming
        ``name`` and ``smiles``. The SMILES travel with the candidates, so a model fitted with
        drug fingerprints (``celltwin fit --drugs``) predicts drugs it never saw.
    doses
        Doses in uM, each > 0.
    """
    table = _library(library)
    grid = [float(d) for d in doses]
    if not grid or any(not np.isfinite(d) or d <= 0 for d in grid):
        raise ValueError(f"'doses' must be doses in uM, each > 0 (got {list(doses)})")
    names = np.repeat(table["name"].to_numpy(), len(grid)).tolist()
    dose_text = [format_dose([d]) for d in grid] * len(table)
    out = _predicted(names, dose_text)
    out.table["smiles"] = np.repeat(table["smiles"].to_numpy(), len(grid))
    return Candidates(out.table)


def _library(library: pd.DataFrame | str | os.PathLike[str]) -> pd.DataFrame:
    if isinstance(library, str | os.PathLike):
        path = Path(library)
        if not path.is_file():
            raise FileNotFoundError(
                f"drug library {str(path)!r} not found. Fix: a CSV of name,SMILES (--drugs FILE)."
            )
        raw = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
        head = [str(v).strip().lower() for v in raw.iloc[0]]
        if "name" in head and "smiles" in head:
            raw = raw.iloc[1:].set_axis(head, axis=1)
        else:
            raw = raw.rename(columns={0: "name", 1: "smiles"})
        library = raw
    if not isinstance(library, pd.DataFrame) or not {"name", "smiles"} <= set(library.columns):
        raise ValueError(
            "'library' must be a DataFrame with columns 'name' and 'smiles' or a CSV of "
            "name,SMILES rows. Fix: e.g. ../shared/data/drugs/sciplex_drugs_smiles.csv."
        )
    out = library[["name", "smiles"]].dropna().astype(str)
    out = out.apply(lambda c: c.str.strip()).drop_duplicates("name")
    if len(out) == 0:
        raise ValueError("'library' holds no drug with a name and a SMILES.")
    return out.reset_index(drop=True)


def measured(profiles: AnnData | str | os.PathLike[str], *, prefix: str = "") -> Candidates:
    """Measured profiles as candidates, screened beside the predicted ones.

    Parameters
    ----------
    profiles
        An AnnData of effects (rows = profiles, e.g. the ``delta`` layer of
        :func:`celltwin.pp.pseudobulk` as X; ``obs['perturbation']`` names each row, else its
        obs name), an ``.h5ad`` of one, a ranked signature file (``.json.gz``/``.json``,
        :func:`celltwin.io.read_signatures`; ranks become centred scores, +1 for the most up
        gene to -1 for the most down, 0 for genes not ranked) or a ``.csv``/``.tsv`` of gene
        scores (rows = profiles, first column their names; columns = genes).
    prefix
        Put before every label (e.g. ``"measured:"``), to tell a measured STAT1 from a
        predicted one.
    """
    adata = _profiles(profiles)
    x = np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X, dtype=float)
    if x.ndim != 2 or adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError("measured: the profiles are empty (no rows or no genes).")
    if np.isinf(x).any():
        raise ValueError("measured: the profiles hold infinite values. Fix: drop or clip them.")
    names = (
        adata.obs[PERTURBATION].astype(str).to_numpy()
        if PERTURBATION in adata.obs
        else adata.obs_names.astype(str).to_numpy()
    )
    labels = [f"{prefix}{n}" for n in adata.obs_names.astype(str)]
    dose = adata.obs[DOSE].astype(str).to_numpy() if DOSE in adata.obs else ""
    table = pd.DataFrame({"label": labels, PERTURBATION: names, DOSE: dose, "kind": "measured"})
    out = AnnData(
        X=x.astype(np.float32),
        obs=pd.DataFrame({PERTURBATION: names}, index=pd.Index(labels)),
        var=pd.DataFrame(index=adata.var_names.astype(str)),
    )
    if not out.var_names.is_unique:
        raise ValueError("measured: the profiles name some genes twice. Fix: make genes unique.")
    return Candidates(table, out)


def _profiles(source: AnnData | str | os.PathLike[str]) -> AnnData:
    if isinstance(source, AnnData):
        return source
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"measured profiles {str(path)!r} not found (--measured).")
    name = path.name.lower()
    if name.endswith(".h5ad"):
        import anndata

        return anndata.read_h5ad(path)
    if name.endswith((".json", ".json.gz")) or path.is_dir():
        return read_signatures(path).to_scores(transform="linear_rank")
    if name.endswith((".csv", ".tsv", ".csv.gz", ".tsv.gz")):
        sep = "\t" if ".tsv" in name else ","
        frame = pd.read_csv(path, sep=sep, index_col=0)
        frame = frame.apply(pd.to_numeric, errors="coerce")
        return AnnData(
            X=frame.to_numpy(dtype=np.float32),
            obs=pd.DataFrame(index=frame.index.astype(str)),
            var=pd.DataFrame(index=frame.columns.astype(str)),
        )
    raise ValueError(
        f"measured profiles {str(path)!r}: unknown format. Fix: an .h5ad of effects, a "
        ".json.gz signature file or a .csv of gene scores (rows = profiles)."
    )


def cmap(path: str | os.PathLike[str] | None = None, *, prefix: str = "cmap:") -> Candidates:
    """The ranked Connectivity Map profiles (56 compounds, 11,863 genes) as measured candidates.

    Ranks become centred rank scores, as for ranked signatures: in a profile ranking ``n``
    genes, rank ``r`` (1 = most up-regulated, CMap build 02's convention) scores
    ``1 - 2 (r - 1) / (n - 1)``, +1 for the most up to -1 for the most down; tied ranks
    (``5266.5``) keep their mid-rank. Genes a profile does not rank are NaN.

    Parameters
    ----------
    path
        A genes x compounds CSV of ranks; default the shared
        ``data/lincs/DrugVsDisease_cmap56_rank_profiles.csv.gz``.
    prefix
        Put before every compound's label.
    """
    file = Path(path) if path is not None else shared_dir() / CMAP_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"Connectivity Map profiles {str(file)!r} not found. Fix: set CELLTWIN_SHARED to "
            "the shared folder, or pass path= (a genes x compounds CSV of ranks)."
        )
    ranks = pd.read_csv(file, index_col=0).apply(pd.to_numeric, errors="coerce")
    n = ranks.notna().sum(axis=0).to_numpy(dtype=float)
    scores = 1.0 - 2.0 * (ranks.to_numpy(dtype=float) - 1.0) / np.maximum(n - 1.0, 1.0)
    adata = AnnData(
        X=scores.T.astype(np.float32),
        obs=pd.DataFrame(index=ranks.columns.astype(str)),
        var=pd.DataFrame(index=ranks.index.astype(str)),
    )
    return measured(adata, prefix=prefix)


def concat(*candidates: Candidates) -> Candidates:
    """Join candidate lists (labels must stay unique); measured profiles are joined on the
    union of their genes (NaN where a profile has no value)."""
    if not candidates or not all(isinstance(c, Candidates) for c in candidates):
        raise TypeError("concat takes one or more Candidates")
    table = pd.concat([c.table for c in candidates], ignore_index=True)
    parts = [c.profiles for c in candidates if c.profiles is not None and c.profiles.n_obs]
    if not parts:
        return Candidates(table)
    genes_ = pd.Index(list(dict.fromkeys(g for p in parts for g in p.var_names)))
    x = np.full((sum(p.n_obs for p in parts), len(genes_)), np.nan, dtype=np.float32)
    row = 0
    for p in parts:
        x[row : row + p.n_obs, genes_.get_indexer(p.var_names)] = np.asarray(p.X)
        row += p.n_obs
    obs = pd.concat([p.obs for p in parts])
    if not obs.index.is_unique:
        dup = obs.index[obs.index.duplicated()].unique().tolist()
        raise ValueError(
            f"Candidates: duplicate labels {dup[:5]}. Fix: give each library its own prefix "
            "(measured(..., prefix='lib:'))."
        )
    return Candidates(table, AnnData(X=x, obs=obs, var=pd.DataFrame(index=genes_)))
