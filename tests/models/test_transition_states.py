"""``transition``'s cell states: sub-populations of a context respond differently, and a target
context borrows the response of the sub-states its cells resemble."""

from __future__ import annotations

import numpy as np
import pytest

from celltwin.models._transition import TransitionModel
from celltwin.models._transition._features import Transfer
from celltwin.models._transition._states import CellStates, fit_states

N_GENES = 12


def _cells(rng: np.random.Generator, n: int, marker: int, *, gain: int | None = None) -> np.ndarray:
    """Log-expression cells of one state: ``marker`` high; ``gain`` raised by 2 when treated."""
    x = np.abs(rng.normal(0.5, 0.1, size=(n, N_GENES)))
    x[:, marker] += 3.0
    if gain is not None:
        x[:, gain] += 2.0
    return x


def _world(seed: int = 0):
    """Two training contexts, each half state a (gene 0 high, answers on gene 5) and half state
    b (gene 1 high, answers on gene 6); the treated cells keep their markers."""
    rng = np.random.default_rng(seed)
    blocks, contexts, control, conditions = [], [], [], []
    for c in ("S1", "S2"):
        start = sum(len(b) for b in blocks)
        parts = [
            (_cells(rng, 200, 0), True),
            (_cells(rng, 200, 1), True),
            (_cells(rng, 200, 0, gain=5), False),
            (_cells(rng, 200, 1, gain=6), False),
        ]
        for x, is_ctrl in parts:
            blocks.append(x)
            contexts += [c] * len(x)
            control += [is_ctrl] * len(x)
        conditions.append(np.arange(start + 400, start + 800))
    x = np.vstack(blocks)
    contexts_arr, control_arr = np.array(contexts), np.array(control)
    delta = np.vstack([x[rows].mean(0) - x[(contexts_arr == c) & control_arr].mean(0)
                       for c, rows in zip(("S1", "S2"), conditions, strict=True)])  # fmt: skip
    states = fit_states(
        x, x, contexts_arr, control_arr, ["S1", "S2"], conditions, ["S1", "S2"], delta, seed=0
    )
    return rng, delta, states


def test_states_resolve_a_context_into_sub_populations_with_their_own_effects() -> None:
    _, delta, states = _world()
    assert isinstance(states, CellStates)
    # 400 controls per context: two sub-states each (at least 2, 150 cells apiece), every
    # sub-state with enough control and treated cells for an effect of its own.
    np.testing.assert_array_equal(states.n_states, [2, 2])
    assert len(states.index) == 4
    np.testing.assert_array_equal(states.cells, np.full((4, 2), 200))
    for (row, _), effect in zip(states.index, states.effects, strict=True):
        # Each sub-state answers on one gene only; the context-wide effect is half of each.
        answers = np.sort(effect[[5, 6]])
        np.testing.assert_allclose(answers, [0.0, 2.0], atol=0.05)
        np.testing.assert_allclose(delta[row][[5, 6]], [1.0, 1.0], atol=0.05)


def test_a_target_of_one_state_borrows_that_states_response() -> None:
    rng, delta, states = _world()
    keys = [("S1", "drug", ""), ("S2", "drug", "")]
    latent = {"S1": np.zeros(2), "S2": np.zeros(2), "T": np.zeros(2)}
    target = _cells(rng, 100, 1)  # every cell like state b
    with_states = Transfer(
        keys, delta, latent, tau=np.inf, features=None, ridge=1.0,
        states=states, targets={"T": target},
    )  # fmt: skip
    got = with_states.context(("T", "drug", ""), np.zeros(2))
    assert got is not None
    np.testing.assert_allclose(got[[5, 6]], [0.0, 2.0], atol=0.05)
    # Context-wide effects (no states) can only give the mixture.
    plain = Transfer(keys, delta, latent, tau=np.inf, features=None, ridge=1.0)
    np.testing.assert_allclose(
        plain.context(("T", "drug", ""), np.zeros(2))[[5, 6]], 1.0, atol=0.05
    )
    # A training context as the target: its own cells never count as neighbours.
    counts = states.counts(states.cells_of(0), [0, 1], exclude=0)
    assert set(counts) == {1}
    assert sum(v.sum() for v in counts.values()) == len(states.cells_of(0)) * 30


def test_states_are_fitted_and_persisted_only_when_switched_on(experiment) -> None:
    tiny = dict(n_members=1, max_steps=5, hidden=8, n_latent=4, cells=8, progress=False)
    on = TransitionModel(**tiny).fit(experiment.adata)
    assert on.n_state_cells_ > 0 and on.states_effects_.shape[1] == len(on.genes_)
    off = TransitionModel(**tiny, cell_states=False).fit(experiment.adata)
    assert off.n_state_cells_ == 0 and off._states() is None


@pytest.mark.parametrize("seed", [0, 1])
def test_states_are_seeded(seed: int) -> None:
    _, _, a = _world(seed)
    _, _, b = _world(seed)
    np.testing.assert_array_equal(a.label, b.label)
    np.testing.assert_array_equal(a.effects, b.effects)
