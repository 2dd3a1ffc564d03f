"""A small mechanistic virtual cell with known ground truth: data for tests and benchmarks.

:func:`simulate` draws a gene regulatory network, contexts and perturbations (genetic, drugs with
a Hill dose-response, cytokines), solves the network's steady state per condition and samples
negative-binomial counts; it returns the canonical AnnData with the true effects and interactions.
:func:`write_h5ad` writes millions of such cells to disk chunk by chunk.
"""

from ._simulate import Simulation, simulate, write_h5ad

__all__ = ["Simulation", "simulate", "write_h5ad"]
