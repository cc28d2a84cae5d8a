"""The scikit-learn estimator ``BernoulliRBMEstimator``: the interface of sklearn's BernoulliRBM."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM as SklearnBernoulliRBM
from sklearn.pipeline import Pipeline

from ebrl.boltzmann import pseudo_log_likelihood
from ebrl.boltzmann.sklearn import BernoulliRBMEstimator


@pytest.fixture(autouse=True)
def one_blas_thread():
    """NumPy's BLAS threads fight over the cores when tests run in parallel (LogisticRegression
    slows 20x); one thread per test process, as conftest.py does for torch."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.2, stratify=y, random_state=0)


def test_pipeline_with_logistic_regression_classifies_digits(digits):
    x_train, x_test, y_train, y_test = digits
    clf = Pipeline([
        ("rbm", BernoulliRBMEstimator(n_components=64, learning_rate=0.06, n_iter=10, random_state=0)),
        ("logistic", LogisticRegression(max_iter=2000)),
    ])
    clf.fit(x_train, y_train)
    # scikit-learn's own RBM reaches ~0.89 on this split with 64 components; chance is 0.1.
    assert clf.score(x_test, y_test) > 0.8
    assert clf.named_steps["rbm"].get_feature_names_out().shape == (64,)


def test_fitted_attributes_and_transform_follow_sklearn(digits):
    x_train = digits[0]
    est = BernoulliRBMEstimator(n_components=16, n_iter=2, random_state=0).fit(x_train)
    assert est.components_.shape == (16, 64)
    assert est.intercept_hidden_.shape == (16,) and est.intercept_visible_.shape == (64,)
    assert est.h_samples_.shape == (10, 16) and est.n_features_in_ == 64
    h = est.transform(x_train[:5])
    expected = 1 / (1 + np.exp(-(x_train[:5] @ est.components_.T + est.intercept_hidden_)))
    assert h.dtype == np.float64 and np.allclose(h, expected, atol=1e-5)
    assert est.transform(x_train[:5].astype(np.float32)).dtype == np.float32
    v = est.gibbs(x_train[:7])
    assert v.shape == (7, 64) and set(np.unique(v)) <= {0.0, 1.0}


def test_same_random_state_same_model_and_global_rngs_untouched(digits):
    x_train = digits[0][:300]
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002 (the legacy global RNG)
    a = BernoulliRBMEstimator(n_components=8, n_iter=2, random_state=3).fit(x_train)
    b = BernoulliRBMEstimator(n_components=8, n_iter=2, random_state=3).fit(x_train)
    c = BernoulliRBMEstimator(n_components=8, n_iter=2, random_state=4).fit(x_train)
    assert np.array_equal(a.components_, b.components_)
    assert not np.array_equal(a.components_, c.components_)
    assert np.array_equal(a.score_samples(x_train), a.score_samples(x_train))
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002


def test_score_samples_is_sklearns_stochastic_pseudo_likelihood(digits):
    x = (digits[0][:200] > 0.5).astype(np.float64)
    est = BernoulliRBMEstimator(n_components=16, n_iter=3, random_state=0).fit(x)
    # Put the same weights into scikit-learn's estimator: both score n_features · log σ(ΔF) for
    # one random feature per sample, whose expectation over the feature is the sample's exact
    # pseudo-likelihood. Given the samples, the 200 x 50 (sample, seed) scores are independent,
    # so their mean has standard error below std / sqrt(10,000) (the pooled std also holds the
    # spread between samples, which does not enter the error: conservative); we allow 5 of them.
    sk = SklearnBernoulliRBM(n_components=16)
    sk.components_, sk.intercept_hidden_, sk.intercept_visible_ = (
        est.components_, est.intercept_hidden_, est.intercept_visible_
    )
    sk.n_features_in_ = 64
    exact = float(pseudo_log_likelihood(est.model_, x).mean())
    ours = np.stack([est.set_params(random_state=s).score_samples(x) for s in range(50)])
    theirs = np.stack([sk.set_params(random_state=s).score_samples(x) for s in range(50)])
    for scores in (ours, theirs):
        se = scores.std() / math.sqrt(scores.size)
        assert abs(scores.mean() - exact) < 5 * se
    assert np.allclose(est.pseudo_likelihood(x), pseudo_log_likelihood(est.model_, x).numpy())


def test_partial_fit_updates_incrementally(digits):
    x_train = digits[0]
    est = BernoulliRBMEstimator(n_components=8, batch_size=20, random_state=0)
    est.partial_fit(x_train[:20])
    first = est.components_.copy()
    est.partial_fit(x_train[20:40])
    assert not np.array_equal(first, est.components_)
    assert est.h_samples_.shape == (20, 8) and est.n_features_in_ == 64


def test_clone_get_params_and_pickle(digits):
    x_train = digits[0][:200]
    est = BernoulliRBMEstimator(n_components=8, n_iter=1, random_state=0, momentum=0.5, method="cd")
    params = clone(est).get_params()
    assert params["n_components"] == 8 and params["momentum"] == 0.5 and params["method"] == "cd"
    est.fit(x_train)
    restored = pickle.loads(pickle.dumps(est))
    assert np.array_equal(restored.transform(x_train), est.transform(x_train))


def test_bad_inputs_raise_value_errors(digits):
    x_train = digits[0][:50]
    with pytest.raises(NotFittedError):
        BernoulliRBMEstimator().transform(x_train)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BernoulliRBMEstimator(n_iter=1).fit(x_train * 16)
    with pytest.raises(ValueError, match="NaN"):
        BernoulliRBMEstimator(n_iter=1).fit(np.full((3, 4), np.nan))
    est = BernoulliRBMEstimator(n_components=4, n_iter=1, random_state=0).fit(x_train)
    with pytest.raises(ValueError, match="features"):
        est.transform(x_train[:, :10])
    with pytest.raises(ValueError, match="n_components"):
        BernoulliRBMEstimator(n_components=0).fit(x_train)
