"""Drug splits: unseen drugs (all doses held out) and unseen doses (some doses of each drug)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Literal

import numpy as np
from anndata import AnnData

from .._keys import (
    CONTROL,
    DOSE,
    DRUG,
    PERTURBATION,
    PERTURBATION_TYPE,
    SPLIT,
)
from ..io import parse_dose
from ._core import (
    Unit,
    as_name_list,
    assign,
    base_params,
    check_fraction,
    check_names,
    components,
    count_for,
    draw,
    not_enough,
    obs_strings,
    require_columns,
    require_writable,
    store,
)
from ._leakage import check_leakage


def _drug_mask(adata: AnnData) -> np.ndarray:
    """Perturbed cells whose perturbation type is drug; raises when there are none."""
    require_columns(adata, [PERTURBATION, PERTURBATION_TYPE])
    mask = (obs_strings(adata, PERTURBATION_TYPE) == DRUG) & (
        obs_strings(adata, PERTURBATION) != CONTROL
    )
    if not mask.any():
        raise ValueError(
            f"no perturbed cell has obs[{PERTURBATION_TYPE!r}] == {DRUG!r}: drug splits need "
            f"drug-treated cells; use split_perturbations for other perturbation types"
        )
    return mask


def _dose_key(dose: str) -> tuple[float, ...]:
    """A canonical dose string as numbers to sort by; a component without a dose sorts first."""
    try:
        values = parse_dose(dose)
    except ValueError as error:
        raise ValueError(f"obs[{DOSE!r}]: {error}") from None
    return tuple(-1.0 if v is None else v for v in values)


def split_drugs(
    adata: AnnData,
    *,
    test_fraction: float = 0.2,
    val_fraction: float = 0.0,
    test: Sequence[str] | None = None,
    val: Sequence[str] | None = None,
    seed: int = 0,
    key_added: str = SPLIT,
) -> None:
    """Hold out whole drugs: every dose of a held-out drug, alone or in a combination, is held out.

    The unit held out is the drug (a component of ``obs['perturbation']``): each perturbation
    containing a test drug goes to test at all its doses and in all contexts, so the model never
    sees the drug. Only cells with ``obs['perturbation_type'] == 'drug'`` take part; other
    perturbations and all control cells stay ``train``.

    Parameters
    ----------
    adata
        Canonical AnnData with ``obs['perturbation']`` and ``obs['perturbation_type']``.
    test_fraction, val_fraction
        Fractions of the drugs held out for test and val (rounded half up, at least one when
        positive). Ignored for a set given as a list. ``val_fraction`` defaults to 0: no
        validation set unless asked for (0.1 was the default before).
    test, val
        Explicit drugs to hold out. A combination containing a test drug goes to test even when
        it also contains a val drug.
    seed
        Seed of ``numpy.random.default_rng``.
    key_added
        obs column (and uns entry) the split is written to.

    Examples
    --------
    >>> split_drugs(adata, test=["dexamethasone"], val_fraction=0)  # doctest: +SKIP
    """
    require_writable(adata, key_added)
    mask = _drug_mask(adata)
    test_fraction = check_fraction("test_fraction", test_fraction)
    val_fraction = check_fraction("val_fraction", val_fraction)
    perturbations = obs_strings(adata, PERTURBATION)
    drug_perturbations = sorted(set(perturbations[mask].tolist()))
    drugs = sorted({d for p in drug_perturbations for d in components(p)})
    test_drugs = None if test is None else check_names("test", as_name_list(test), drugs, "drugs")
    val_drugs = None if val is None else check_names("val", as_name_list(val), drugs, "drugs")
    if test_drugs is not None and val_drugs is not None and set(test_drugs) & set(val_drugs):
        raise ValueError(
            f"drugs {sorted(set(test_drugs) & set(val_drugs))} are in both 'test' and 'val': a "
            "drug is held out for one of them only"
        )
    rng = np.random.default_rng(seed)
    if test_drugs is None:
        test_drugs = draw(
            set(drugs) - set(val_drugs or []), count_for(test_fraction, len(drugs)), rng
        )
    if val_drugs is None:
        val_drugs = draw(set(drugs) - set(test_drugs), count_for(val_fraction, len(drugs)), rng)
    test_p = [p for p in drug_perturbations if set(components(p)) & set(test_drugs)]
    val_p = [
        p
        for p in drug_perturbations
        if set(components(p)) & set(val_drugs) and p not in set(test_p)
    ]
    if len(test_p) + len(val_p) >= len(drug_perturbations):
        raise not_enough(
            "drug perturbations",
            len(drug_perturbations),
            len(test_p),
            len(val_p),
            "hold out fewer drugs (lower test_fraction / val_fraction or shorten the lists)",
        )

    unit = [PERTURBATION]
    labels = assign(adata, unit, [(p,) for p in test_p], [(p,) for p in val_p])
    params = base_params(
        "drugs",
        seed=seed,
        unit=unit,
        test=[(p,) for p in test_p],
        val=[(p,) for p in val_p],
        test_components=test_drugs,
        val_components=val_drugs,
    )
    params.update(
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        explicit_test=test is not None,
        explicit_val=val is not None,
    )
    store(adata, labels, key_added=key_added, params=params)
    check_leakage(adata, key=key_added)


# --- unseen doses ------------------------------------------------------------------------------

DoseChooser = Callable[[list[str], int, int, np.random.Generator], tuple[list[str], list[str]]]


def _highest(
    doses: list[str], n_test: int, n_val: int, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    return doses[len(doses) - n_test :], doses[len(doses) - n_test - n_val : len(doses) - n_test]


def _lowest(
    doses: list[str], n_test: int, n_val: int, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    return doses[:n_test], doses[n_test : n_test + n_val]


def _random(
    doses: list[str], n_test: int, n_val: int, rng: np.random.Generator
) -> tuple[list[str], list[str]]:
    order = rng.permutation(len(doses))
    return [doses[i] for i in order[:n_test]], [doses[i] for i in order[n_test : n_test + n_val]]


#: How ``split_doses`` picks the held-out doses of one drug from its doses sorted low to high.
DOSE_CHOOSERS: dict[str, DoseChooser] = {"highest": _highest, "lowest": _lowest, "random": _random}


def split_doses(
    adata: AnnData,
    *,
    which: Literal["highest", "lowest", "random"] = "highest",
    n_test: int = 1,
    n_val: int = 0,
    seed: int = 0,
    key_added: str = SPLIT,
) -> None:
    """Hold out some doses of every drug: predict a drug's response at a dose never seen.

    For each drug perturbation (``obs['perturbation_type'] == 'drug'``) its distinct doses are
    sorted numerically (combinations: component by component) and ``n_test`` of them go to test,
    ``n_val`` to val: the highest (val: the next highest), the lowest (val: the next lowest) or
    random ones. The unit held out is the (perturbation, dose) pair. A drug with fewer than
    ``n_test + n_val + 1`` distinct doses stays entirely in ``train`` and is listed in
    ``too_few_doses`` in the stored parameters. Control cells stay ``train``.

    Parameters
    ----------
    adata
        Canonical AnnData with ``obs['perturbation']``, ``obs['perturbation_type']`` and
        ``obs['dose']`` (canonical dose strings, micromolar).
    which
        ``"highest"``, ``"lowest"`` or ``"random"`` (see :data:`DOSE_CHOOSERS`).
    n_test, n_val
        Doses per drug held out for test (>= 1) and val (>= 0).
    seed
        Seed of ``numpy.random.default_rng`` (used by ``which="random"``).
    key_added
        obs column (and uns entry) the split is written to.

    Examples
    --------
    >>> split_doses(adata, which="highest", n_test=1)  # doctest: +SKIP
    """
    require_writable(adata, key_added)
    if which not in DOSE_CHOOSERS:
        raise ValueError(f"'which' must be one of {sorted(DOSE_CHOOSERS)} (got {which!r})")
    if int(n_test) < 1 or int(n_val) < 0:
        raise ValueError(
            f"'n_test' must be >= 1 and 'n_val' >= 0 (got n_test={n_test}, n_val={n_val}): they "
            "count the doses per drug held out"
        )
    mask = _drug_mask(adata)
    if DOSE not in adata.obs.columns:
        require_columns(adata, [DOSE])  # raises the standard missing-column error
    n_missing = int(adata.obs[DOSE].isna().to_numpy()[mask].sum())
    if n_missing:
        raise ValueError(
            f"obs[{DOSE!r}] is missing for {n_missing} drug-treated cells: give every drug cell its "
            "dose (celltwin.io.format_dose) or drop those cells"
        )
    perturbations = obs_strings(adata, PERTURBATION)[mask]
    doses = obs_strings(adata, DOSE)[mask]
    by_drug: dict[str, set[str]] = {}
    for p, d in zip(perturbations, doses, strict=True):
        by_drug.setdefault(p, set()).add(d)

    rng = np.random.default_rng(seed)
    test_units: list[Unit] = []
    val_units: list[Unit] = []
    too_few: list[str] = []
    for drug in sorted(by_drug):
        values = {d: _dose_key(d) for d in by_drug[drug]}
        ordered = sorted(values, key=lambda d: (values[d], d))
        clashes = [(a, b) for a, b in pairwise(ordered) if values[a] == values[b]]
        if clashes:
            raise ValueError(
                f"obs[{DOSE!r}] of {drug!r} writes one dose two ways {clashes[0]}: cells at the "
                "same dose must share one string; rebuild the column with celltwin.io.format_dose"
            )
        if len(ordered) < n_test + n_val + 1:
            too_few.append(drug)
            continue
        test_d, val_d = DOSE_CHOOSERS[which](ordered, int(n_test), int(n_val), rng)
        test_units += [(drug, d) for d in test_d]
        val_units += [(drug, d) for d in val_d]
    if not test_units:
        raise ValueError(
            f"not enough doses: no drug has more than {n_test + n_val} distinct doses in "
            f"obs[{DOSE!r}], so none can be held out; lower n_test / n_val"
        )

    unit = [PERTURBATION, DOSE]
    labels = assign(adata, unit, test_units, val_units)
    params = base_params("doses", seed=seed, unit=unit, test=test_units, val=val_units)
    params.update(which=which, n_test=int(n_test), n_val=int(n_val), too_few_doses=too_few)
    store(adata, labels, key_added=key_added, params=params)
    check_leakage(adata, key=key_added)
