from __future__ import annotations

import numpy as np
import pytest

from celltwin.io import format_dose, parse_dose
from celltwin.io._dose import parse_dose_value, unit_factor


def test_format_parse_round_trip_is_exact() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 4))
        values = [None if rng.random() < 0.2 else float(10 ** rng.uniform(-4, 4)) for _ in range(n)]
        if all(v is None for v in values):
            continue
        assert parse_dose(format_dose(values), n_components=n) == values


def test_units_convert_to_micromolar() -> None:
    assert format_dose([100.0], unit="nM") == "0.1"
    assert format_dose([1.0, 2.0], unit="mM") == "1000+2000"
    assert format_dose([10.0], unit="µM") == "10"
    assert parse_dose_value("250 nM") == pytest.approx(0.25)
    assert parse_dose_value("0.5uM") == 0.5
    assert parse_dose_value("3", unit="mM") == 3000.0
    assert parse_dose_value("nan") is None
    assert unit_factor("μM") == 1.0  # Greek mu as well as the micro sign


def test_missing_components_and_empty_string() -> None:
    assert format_dose([0.1, None]) == "0.1+"
    assert parse_dose("0.1+") == [0.1, None]
    assert format_dose([None, None]) == ""
    assert parse_dose("", n_components=2) == [None, None]
    assert parse_dose("") == []


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: parse_dose("1+x"), "cannot read canonical dose '1\\+x'"),
        (lambda: parse_dose("1+2", n_components=3), "2 parts but the perturbation has 3"),
        (lambda: format_dose([-1.0]), "must be a finite number >= 0"),
        (lambda: format_dose([1.0], unit="ppm"), "unknown dose unit 'ppm'"),
        (lambda: parse_dose_value("ten"), "cannot read dose 'ten'"),
    ],
)
def test_bad_doses_say_what_and_how(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
