"""Matrix factorisation for user-item ratings (biased ALS) and top-k ranking metrics."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator, RegressorMixin

Array = NDArray[np.float64]


class MatrixFactorization(RegressorMixin, BaseEstimator):  # type: ignore[misc]
    """Rating ≈ global mean + user bias + item bias + <user factors, item factors>.

    ``X`` has two columns, user id then item id (any hashable; compared as strings);
    ``y`` is the rating. Unknown users or items fall back to the biases that are known.
    """

    def __init__(
        self, n_factors: int = 10, reg: float = 0.1, n_iter: int = 15, random_state: int = 0
    ) -> None:
        self.n_factors = n_factors
        self.reg = reg
        self.n_iter = n_iter
        self.random_state = random_state

    # No declarative rules: _validate_params below checks the values itself.
    _parameter_constraints: dict[str, list[Any]] = {}

    def _validate_params(self) -> None:
        if int(self.n_factors) < 1 or float(self.reg) < 0 or int(self.n_iter) < 1:
            raise ValueError("n_factors and n_iter must be >= 1 and reg >= 0")

    def fit(self, X: Any, y: Any) -> MatrixFactorization:
        self._validate_params()
        users, items = _ids(X)
        self.user_index_ = {u: i for i, u in enumerate(dict.fromkeys(users))}
        self.item_index_ = {v: i for i, v in enumerate(dict.fromkeys(items))}
        u = np.array([self.user_index_[x] for x in users], dtype=np.int64)
        v = np.array([self.item_index_[x] for x in items], dtype=np.int64)
        r = np.asarray(y, dtype=np.float64)
        self.global_mean_ = float(r.mean())
        self.rating_range_ = np.array([r.min(), r.max()], dtype=np.float64)
        rng = np.random.default_rng(self.random_state)
        k = int(self.n_factors)
        self.user_factors_ = rng.normal(0, 0.1, (len(self.user_index_), k))
        self.item_factors_ = rng.normal(0, 0.1, (len(self.item_index_), k))
        self.user_bias_ = np.zeros(len(self.user_index_))
        self.item_bias_ = np.zeros(len(self.item_index_))
        for _ in range(int(self.n_iter)):
            self._solve(u, v, r - self.global_mean_ - self.item_bias_[v], users_side=True)
            self._solve(v, u, r - self.global_mean_ - self.user_bias_[u], users_side=False)
        return self

    def _solve(
        self, rows: NDArray[np.int64], cols: NDArray[np.int64], target: Array, users_side: bool
    ) -> None:
        # Each row's (factors, bias) is a small ridge regression on the other side's factors.
        own, other = (
            (self.user_factors_, self.item_factors_)
            if users_side
            else (self.item_factors_, self.user_factors_)
        )
        bias = self.user_bias_ if users_side else self.item_bias_
        design = np.hstack([other, np.ones((other.shape[0], 1))])
        penalty = float(self.reg) * np.eye(design.shape[1])
        order = np.argsort(rows, kind="stable")
        starts = np.searchsorted(rows[order], np.arange(own.shape[0] + 1))
        for index in range(own.shape[0]):
            picked = order[starts[index] : starts[index + 1]]
            m = design[cols[picked]]
            sol = np.linalg.solve(m.T @ m + penalty * len(picked), m.T @ target[picked])
            own[index], bias[index] = sol[:-1], sol[-1]

    def predict(self, X: Any) -> Array:
        users, items = _ids(X)
        k = self.user_factors_.shape[1]
        zero = np.zeros(k)
        out = np.empty(len(users))
        for n, (user, item) in enumerate(zip(users, items, strict=True)):
            ui, ii = self.user_index_.get(user), self.item_index_.get(item)
            p = self.user_factors_[ui] if ui is not None else zero
            q = self.item_factors_[ii] if ii is not None else zero
            out[n] = (
                self.global_mean_
                + (self.user_bias_[ui] if ui is not None else 0.0)
                + (self.item_bias_[ii] if ii is not None else 0.0)
                + float(p @ q)
            )
        return np.clip(out, self.rating_range_[0], self.rating_range_[1])

    def recommend(self, user: Any, k: int = 10, exclude: set[str] | None = None) -> list[str]:
        """Top-k item ids for ``user``, best first, skipping ``exclude`` (e.g. items seen)."""
        ui = self.user_index_.get(str(user))
        scores = self.item_bias_.copy()
        if ui is not None:
            scores += self.item_factors_ @ self.user_factors_[ui]
        ranked = [self._items()[i] for i in np.argsort(-scores, kind="stable")]
        skip = exclude or set()
        return [item for item in ranked if item not in skip][:k]

    def _items(self) -> list[str]:
        return list(self.item_index_)


def _ids(X: Any) -> tuple[list[str], list[str]]:
    values = np.asarray(X, dtype=object)
    return [str(x) for x in values[:, 0]], [str(x) for x in values[:, 1]]


def precision_recall_at_k(
    model: MatrixFactorization, train: Any, test: Any, y_test: Any, k: int = 10
) -> tuple[float, float]:
    """Mean precision@k and recall@k over test users with at least one relevant item.

    Relevant: a test item rated at or above the training mean. Items the user rated in
    training are not recommended again.
    """
    seen: dict[str, set[str]] = defaultdict(set)
    for user, item in zip(*_ids(train), strict=True):
        seen[user].add(item)
    relevant: dict[str, set[str]] = defaultdict(set)
    for user, item, rating in zip(*_ids(test), np.asarray(y_test, dtype=float), strict=True):
        if rating >= model.global_mean_:
            relevant[user].add(item)
    precisions, recalls = [], []
    for user, items in relevant.items():
        hits = len(set(model.recommend(user, k, seen[user])) & items)
        precisions.append(hits / k)
        recalls.append(hits / len(items))
    if not precisions:
        return 0.0, 0.0
    return float(np.mean(precisions)), float(np.mean(recalls))
