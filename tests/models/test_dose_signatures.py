"""The dose-signature models: hand examples of the baselines, the learned model on generated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from celltwin.models import (
    DOSE_MODELS,
    DoseResponse,
    LinearLogDose,
    MeanOtherDrugs,
    NearestDoseSignature,
    UnseenConditionError,
)
from celltwin.models._dose_response import kernel_fit, row_spearman, tanimoto


def _sigs(rows: list[tuple[str, float, list[float]]]) -> AnnData:
    obs = pd.DataFrame(
        {"perturbation": [r[0] for r in rows], "dose": [r[1] for r in rows]},
        index=[str(i) for i in range(len(rows))],
    )
    x = np.array([r[2] for r in rows], dtype=np.float64)
    return AnnData(X=x, obs=obs, var=pd.DataFrame(index=[f"g{j}" for j in range(x.shape[1])]))


def _query(*pairs: tuple[str, float]) -> pd.DataFrame:
    return pd.DataFrame(pairs, columns=["perturbation", "dose"])


def test_linear_log_dose_is_exact_on_a_linear_toy() -> None:
    # signature = a + b * log10(dose): interpolation and extrapolation are exact.
    a, b = np.array([1.0, -2.0, 0.5]), np.array([0.3, 1.0, -4.0])
    doses = [0.01, 0.1, 1.0, 10.0]
    sigs = _sigs([("D", d, list(a + b * np.log10(d))) for d in doses])
    model = LinearLogDose().fit(sigs)
    for d in (0.03, 0.5, 3.0, 100.0, 0.001):
        np.testing.assert_allclose(
            model.predict(conditions=_query(("D", d)))[0], a + b * np.log10(d), atol=1e-12
        )


def test_linear_log_dose_interpolates_in_log_not_linear_dose() -> None:
    sigs = _sigs([("D", 1.0, [0.0]), ("D", 100.0, [2.0])])
    # 10 uM is half-way in log10 dose (1.0), a fifth of the way in linear dose (0.18).
    assert LinearLogDose().fit(sigs).predict(conditions=_query(("D", 10.0)))[0, 0] == 1.0


def test_nearest_dose_hand_values_and_ties_to_the_lower_dose() -> None:
    sigs = _sigs([("D", 1.0, [1.0]), ("D", 100.0, [5.0]), ("E", 3.0, [9.0])])
    model = NearestDoseSignature().fit(sigs)
    pred = model.predict(conditions=_query(("D", 2.0), ("D", 50.0), ("D", 10.0)))
    assert pred[:, 0].tolist() == [1.0, 5.0, 1.0]  # 10 is equidistant in log: the lower dose


def test_mean_other_drugs_uses_each_drugs_nearest_dose_and_never_the_drug() -> None:
    sigs = _sigs(
        [
            ("D", 1.0, [100.0]),
            ("E", 1.0, [1.0]),
            ("E", 10.0, [3.0]),
            ("F", 0.1, [5.0]),
        ]
    )
    pred = MeanOtherDrugs().fit(sigs).predict(conditions=_query(("D", 8.0), ("NEW", 0.1)))
    assert pred[0, 0] == pytest.approx((3.0 + 5.0) / 2)  # E at 10, F at 0.1; D left out
    assert pred[1, 0] == pytest.approx((100.0 + 1.0 + 5.0) / 3)


def test_per_drug_baselines_refuse_a_drug_without_training_doses() -> None:
    sigs = _sigs([("D", 1.0, [1.0]), ("D", 10.0, [2.0])])
    for cls in (NearestDoseSignature, LinearLogDose):
        with pytest.raises(UnseenConditionError, match="'NEW'"):
            cls().fit(sigs).predict(conditions=_query(("NEW", 1.0)))


def test_bad_doses_and_missing_columns_are_refused() -> None:
    sigs = _sigs([("D", 1.0, [1.0]), ("D", 10.0, [2.0])])
    with pytest.raises(ValueError, match="positive micromolar"):
        LinearLogDose().fit(sigs).predict(conditions=_query(("D", 0.0)))
    with pytest.raises(KeyError, match="dose"):
        LinearLogDose().fit(sigs).predict(conditions=pd.DataFrame({"perturbation": ["D"]}))


def test_kernel_fit_limits() -> None:
    xs = np.array([0.0, 1.0, 2.0])
    ys = np.array([[0.0], [1.0], [2.0]])
    # Local linear reproduces a line anywhere, for any bandwidth; the local mean does not.
    assert kernel_fit(xs, ys, 3.0, bandwidth=0.5, degree=1)[0] == pytest.approx(3.0)
    assert kernel_fit(xs, ys, 3.0, bandwidth=0.5, degree=0)[0] < 2.0
    # A huge bandwidth makes the local mean the plain mean.
    assert kernel_fit(xs, ys, 0.0, bandwidth=1e6, degree=0)[0] == pytest.approx(1.0)


def test_tanimoto_and_row_spearman_hand_values() -> None:
    a = np.array([[1, 1, 0, 0], [0, 0, 1, 1]])
    np.testing.assert_allclose(tanimoto(a, np.array([[1, 1, 1, 0]])), [[2 / 3], [1 / 4]])
    x = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert row_spearman(x, x**3)[0] == pytest.approx(1.0)
    assert row_spearman(x, -x)[0] == pytest.approx(-1.0)


def _dose_plate(seed: int = 0, *, n_drugs: int = 24, n_genes: int = 200, noise: float = 1.0):
    """Drugs with a fixed direction, a sigmoid in log dose, noisy wells; drugs in 3 chemical
    families (fingerprints shared within a family, directions close within a family)."""
    rng = np.random.default_rng(seed)
    doses = [0.04, 0.12, 0.37, 1.11, 3.33, 10.0]
    families = rng.normal(size=(3, n_genes))
    bits = (rng.random((3, 64)) < 0.3).astype(float)
    rows, feats = [], {}
    for d in range(n_drugs):
        fam = d % 3
        direction = families[fam] + 0.5 * rng.normal(size=n_genes)
        ic50 = rng.uniform(-1.0, 0.5)
        feats[f"D{d}"] = np.clip(bits[fam] + (rng.random(64) < 0.05), 0, 1)
        for dose in doses:
            amp = 3.0 / (1 + np.exp(-3 * (np.log10(dose) - ic50)))
            rows.append((f"D{d}", dose, list(amp * direction + noise * rng.normal(size=n_genes))))
    features = pd.DataFrame(feats).T
    return _sigs(rows), features


def _score(model_cls, sigs: AnnData, hidden: np.ndarray, features=None) -> float:
    train, test = sigs[~hidden], sigs.obs.loc[hidden, ["perturbation", "dose"]]
    pred = model_cls().fit(train, features=features).predict(conditions=test)
    return float(row_spearman(pred, np.asarray(sigs.X)[hidden]).mean())


def test_dose_response_beats_interpolation_and_nearest_dose_on_noisy_intermediate_doses() -> None:
    sigs, features = _dose_plate()
    doses = sigs.obs["dose"].to_numpy()
    hidden = np.isin(doses, [0.37, 3.33])
    learned = _score(DoseResponse, sigs, hidden, features)
    assert learned > _score(LinearLogDose, sigs, hidden) + 0.02
    assert learned > _score(NearestDoseSignature, sigs, hidden) + 0.02


def test_dose_response_predicts_new_drugs_from_their_chemical_family() -> None:
    sigs, features = _dose_plate(1)
    hidden = sigs.obs["perturbation"].isin(["D0", "D1", "D2", "D3"]).to_numpy()
    learned = _score(DoseResponse, sigs, hidden, features)
    assert learned > _score(MeanOtherDrugs, sigs, hidden) + 0.05
    model = DoseResponse().fit(sigs[~hidden], features=features)
    assert np.isfinite(model.temperature_[1])  # chose neighbours over the plain mean
    # Without features it is the mean of the other drugs.
    plain = DoseResponse().fit(sigs[~hidden])
    query = sigs.obs.loc[hidden, ["perturbation", "dose"]]
    np.testing.assert_allclose(
        plain.predict(conditions=query),
        MeanOtherDrugs().fit(sigs[~hidden]).predict(conditions=query),
    )


def test_dose_response_parameters_are_validated() -> None:
    sigs, _ = _dose_plate(n_drugs=3, n_genes=20)
    with pytest.raises(ValueError, match="bandwidths"):
        DoseResponse(bandwidths=(0.0,)).fit(sigs)
    with pytest.raises(ValueError, match="degrees"):
        DoseResponse(degrees=(2,)).fit(sigs)


def test_registry_lists_baselines_then_the_learned_model() -> None:
    assert list(DOSE_MODELS) == [
        "nearest_dose",
        "linear_log_dose",
        "mean_other_drugs",
        "dose_response",
    ]
