"""``transition``: celltwin's hybrid, distributional virtual-cell model.

:class:`TransitionModel` starts from the best classical estimate of a condition's effect
(measured, transferred from similar contexts, added up from parts, or regressed from prior
features) and learns, in a PCA latent space, how each cell's response departs from it given
its state, its context's control population and the perturbation. See
:class:`TransitionModel` for the details.
"""

from ._estimator import TransitionModel

__all__ = ["TransitionModel"]
