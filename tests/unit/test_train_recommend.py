"""Matrix factorisation: learns ratings, ranks unseen items, survives unknown ids."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from perennial_runtime.train.recommend import MatrixFactorization, precision_recall_at_k
from support.training import ratings_frame

pytestmark = pytest.mark.unit


def test_fits_ratings_better_than_the_global_mean() -> None:
    frame = ratings_frame().sample(frac=1.0, random_state=0)
    train, test = frame.iloc[:700], frame.iloc[700:]
    model = MatrixFactorization(n_factors=4, reg=0.1).fit(train[["user", "item"]], train["rating"])
    rmse = np.sqrt(np.mean((model.predict(test[["user", "item"]]) - test["rating"]) ** 2))
    baseline = np.sqrt(np.mean((train["rating"].mean() - test["rating"]) ** 2))
    assert rmse < 0.8 * baseline


def test_unknown_users_and_items_fall_back_to_biases() -> None:
    frame = pd.DataFrame(
        {"user": ["a", "a", "b"], "item": ["x", "y", "x"], "rating": [5.0, 1.0, 4.0]}
    )
    model = MatrixFactorization(n_factors=2).fit(frame[["user", "item"]], frame["rating"])
    unknown = model.predict(pd.DataFrame({"user": ["zed"], "item": ["nope"]}))
    assert unknown[0] == pytest.approx(model.global_mean_)
    assert model.recommend("a", 5, exclude={"x"}) == ["y"]


def test_precision_and_recall_at_k_skip_seen_items() -> None:
    frame = ratings_frame().sample(frac=1.0, random_state=0)
    train, test = frame.iloc[:700], frame.iloc[700:]
    model = MatrixFactorization(n_factors=4).fit(train[["user", "item"]], train["rating"])
    precision, recall = precision_recall_at_k(
        model, train[["user", "item"]], test[["user", "item"]], test["rating"], k=10
    )
    assert 0 < precision <= 1 and 0 < recall <= 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="n_factors"):
        MatrixFactorization(n_factors=0).fit(np.array([["a", "x"]]), [1.0])
