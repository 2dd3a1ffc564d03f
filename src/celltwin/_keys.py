"""Canonical names: the single source of truth for celltwin's data model.

Every module reads column names, the control label and the combination separator from here.
Adapters (:mod:`celltwin.io`) translate other conventions into these names once, on the way in.

Data model
----------
``obs['perturbation']``
    The condition's targets, sorted and joined by ``+`` for combinations (``CEBPA+KLF1``).
    Control cells carry :data:`CONTROL` (``"control"``).
``obs['perturbation_type']``
    One of :data:`PERTURBATION_TYPES`.
``obs['context']``
    Cell type, cell line or other biological context the response depends on.
``obs['batch']``
    Optional: replicate, gem group, plate.
``obs['dose']``
    Drugs: dose in micromolar (:data:`DOSE_UNIT`) as a string, one number per component of
    ``perturbation`` in the same (sorted) order, joined by ``+`` (``"0.1+10"``); ``""`` for
    components without a dose. Use :func:`celltwin.io.format_dose` / :func:`celltwin.io.parse_dose`.
``obs['time']``
    Optional, hours.
``var_names``
    Unique gene symbols; ``var['gene_id']`` holds Ensembl IDs where known.
``layers['counts']``
    Raw integer counts when the source has them. ``X`` is ``log1p`` of counts normalised to
    :data:`TARGET_SUM` per cell; what was done is recorded in ``uns['celltwin']``.
"""

from __future__ import annotations

from typing import Final

# --- obs columns -------------------------------------------------------------------------
PERTURBATION: Final = "perturbation"
PERTURBATION_TYPE: Final = "perturbation_type"
CONTEXT: Final = "context"
BATCH: Final = "batch"
DOSE: Final = "dose"
TIME: Final = "time"
SPLIT: Final = "split"  # default obs column a split writes to
#: Column of a prediction: how close each condition is to the model's training data, in
#: ``[0, 1]`` (1: measured or as close as any; calibrated on held-out training conditions).
IN_DOMAIN: Final = "in_domain"
#: obs column of a prediction: where each predicted condition's answer came from.
PREDICTION_SOURCE: Final = "prediction_source"
#: Values of :data:`PREDICTION_SOURCE`: ``measured`` (the trained effect), ``transferred`` (the
#: treatment measured in other contexts or at other doses), ``composed`` (a combination from its
#: measured parts), ``prior`` (prior-knowledge features: gene embeddings, drug fingerprints),
#: ``features`` (gene features derived from the training data), ``control`` (no perturbation).
PREDICTION_SOURCES: Final = ("measured", "transferred", "composed", "prior", "features", "control")

# --- labels --------------------------------------------------------------------------------
CONTROL: Final = "control"
COMBO_SEP: Final = "+"
DOSE_UNIT: Final = "uM"

# --- perturbation types (values of obs['perturbation_type']) ---------------------------------
CRISPR_KO: Final = "crispr_ko"
CRISPRI: Final = "crispri"
CRISPRA: Final = "crispra"
DRUG: Final = "drug"
CYTOKINE: Final = "cytokine"
OTHER: Final = "other"
#: Allowed values of ``obs['perturbation_type']`` (control cells carry :data:`CONTROL`).
PERTURBATION_TYPES: Final = (CONTROL, CRISPR_KO, CRISPRI, CRISPRA, DRUG, CYTOKINE, OTHER)
#: Perturbation types that target genes (their components are gene symbols).
GENETIC_TYPES: Final = (CRISPR_KO, CRISPRI, CRISPRA)

# --- split labels ----------------------------------------------------------------------------
TRAIN: Final = "train"
VAL: Final = "val"
TEST: Final = "test"

# --- var / layers / uns ----------------------------------------------------------------------
GENE_ID: Final = "gene_id"
COUNTS_LAYER: Final = "counts"
UNS_KEY: Final = "celltwin"
TARGET_SUM: Final = 1e4

#: Columns every canonical AnnData has.
REQUIRED_OBS: Final = (PERTURBATION, PERTURBATION_TYPE, CONTEXT)
#: Columns a canonical AnnData may have.
OPTIONAL_OBS: Final = (BATCH, DOSE, TIME)


def split_label(label: str) -> list[str]:
    """Split a label on ``+`` except inside brackets, so ``(+)-JQ1+DMSO`` -> ``["(+)-JQ1", "DMSO"]``.

    Parts are stripped of surrounding blanks; nothing is dropped (adapters decide what a part
    such as ``ctrl`` means).
    """
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in label:
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(depth - 1, 0)
        if ch == COMBO_SEP and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return parts


def split_combination(perturbation: str) -> list[str]:
    """Split a canonical perturbation label into its components (``"A+B"`` -> ``["A", "B"]``).

    Drug names with ``+`` inside brackets stay whole (see :func:`split_label`). The control label
    yields an empty list.
    """
    if perturbation == CONTROL or perturbation == "":
        return []
    return split_label(perturbation)


def join_combination(components: list[str] | tuple[str, ...]) -> str:
    """Join components into the canonical label: sorted, de-duplicated, ``+``-joined.

    Control components are dropped; no components at all yields :data:`CONTROL`.
    """
    parts = sorted({c for c in components if c and c != CONTROL})
    return COMBO_SEP.join(parts) if parts else CONTROL


#: Columns of the table of what each prediction borrowed from (``model.sources``,
#: :func:`celltwin.explain.sources`): the asked condition (``context:perturbation[:dose]``), the
#: source's context, the kind of source, the source perturbation (``perturbation@dose`` when
#: dosed) and its weight.
SOURCE_COLUMNS: Final = ("condition", CONTEXT, "kind", "source", "weight")
