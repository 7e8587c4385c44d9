"""scikit-learn estimators: :class:`KANRegressor` and :class:`KANClassifier`.

Both follow the estimator contract (``__init__`` stores the arguments, ``fit`` returns
``self``, learned attributes end in ``_``) and work in ``Pipeline`` and ``GridSearchCV``.
Their defaults are sized to the data and generalise without tuning (see ``docs/sklearn.md``):
inputs scaled onto the grids, targets standardised, an L2 penalty, and from 500 rows on a
validation split that stops training early, keeps the best parameters and picks the grid.
The fitted :class:`kanlab.KAN` is ``model_`` and carries the pandas column names as its
``input_names``, so plots and formulas use them.

Example:
    >>> from sklearn.datasets import load_digits
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = KANClassifier(random_state=0).fit(X, y)  # doctest: +SKIP
"""
from ._estimators import KANClassifier, KANRegressor

__all__ = ["KANRegressor", "KANClassifier", "expected_failed_checks"]


def expected_failed_checks(estimator) -> dict[str, str]:
    """scikit-learn estimator checks that do not apply, with the reason (for ``parametrize_with_checks``).

    None at present: both estimators pass every check of scikit-learn 1.9 (the array-API checks
    skip themselves unless ``SCIPY_ARRAY_API=1``). Kept so new scikit-learn checks can be listed here.
    """
    return {}
