"""Testing: the conformance checks every celltwin model passes, for your own models too.

After scikit-learn's ``check_estimator`` and ``parametrize_with_checks``::

    from celltwin.testing import check_model, parametrize_with_checks

    check_model(MyModel())                 # raises AssertionError naming the failed check

    @parametrize_with_checks([MyModel(), MyModel(alpha=2.0)])
    def test_my_model(model, check):       # one pytest case per (model, check)
        check(model)

The checks run on small generated data (:func:`celltwin.simulate.simulate` cells, planted
signature scores) in seconds; they cover the contract of :class:`celltwin.models.Model`:
parameters, fit, canonical predictions, unseen conditions, and save/load.
"""

from ._api import check_model, checks_of, parametrize_with_checks

__all__ = ["check_model", "checks_of", "parametrize_with_checks"]
