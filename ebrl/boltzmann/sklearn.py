"""A scikit-learn estimator with the interface of ``sklearn.neural_network.BernoulliRBM``.

``BernoulliRBMEstimator`` is a drop-in replacement for scikit-learn's ``BernoulliRBM``: same
constructor parameters and defaults, ``fit`` / ``partial_fit`` / ``transform`` /
``score_samples`` / ``gibbs``, the fitted attributes ``components_``, ``intercept_hidden_``,
``intercept_visible_``, ``h_samples_`` and ``n_features_in_``, and it works in a ``Pipeline``.
Underneath is ebrl's torch ``BernoulliRBM`` (``model_``), on any device. This module is the only
place in ``ebrl.boltzmann`` that imports scikit-learn (install ``ebrl[sklearn]``).

Differences, all deliberate:

- The default training is scikit-learn's: PCD-1 with ``batch_size`` persistent chains, weights
  initialised from N(0, 0.01²), and the data visited in the given order every epoch. ebrl adds
  ``method`` (``"pcd"`` or ``"cd"``), ``k``, ``momentum``, ``weight_decay`` and ``device``.
- Inputs must lie in [0, 1] (scikit-learn accepts any number; values outside [0, 1] are not
  probabilities of binary units). Dense inputs only.
- Computation is float32 on the chosen device; outputs have the input's float dtype.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

try:
    from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_array, check_is_fitted
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError('ebrl.boltzmann.sklearn needs scikit-learn: pip install "ebrl[sklearn]"') from exc

from ebrl._checks import check_int, check_positive
from ebrl.boltzmann._utils import bernoulli
from ebrl.boltzmann.partition import pseudo_log_likelihood
from ebrl.boltzmann.rbm import BernoulliRBM


def _seed_generator(random_state: Any) -> torch.Generator:
    """A CPU torch generator seeded from a scikit-learn ``random_state`` (None, int or RandomState)."""
    rng = check_random_state(random_state)
    return torch.Generator().manual_seed(int(rng.randint(np.iinfo(np.int32).max)))


class BernoulliRBMEstimator(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Bernoulli RBM as a scikit-learn transformer, mirroring ``sklearn.neural_network.BernoulliRBM``.

    Example::

        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from ebrl.boltzmann.sklearn import BernoulliRBMEstimator
        clf = Pipeline([("rbm", BernoulliRBMEstimator(n_components=100, learning_rate=0.06, n_iter=20,
                                                      random_state=0)),
                        ("logistic", LogisticRegression(max_iter=1000))])
        clf.fit(X_train, y_train).score(X_test, y_test)

    Args:
        n_components: number of hidden units.
        learning_rate: step size of each update (of the batch-mean gradient).
        batch_size: samples per minibatch, and number of PCD chains.
        n_iter: passes over the training data.
        verbose: print the pseudo-likelihood and time after each pass (as scikit-learn does).
        random_state: None, an int or a ``numpy.random.RandomState``; seeds the torch generator
            used for initialisation, training, ``score_samples`` and ``gibbs``.
        method: ``"pcd"`` (scikit-learn's algorithm) or ``"cd"``.
        k: Gibbs sweeps per update.
        momentum: in [0, 1).
        weight_decay: L2 penalty on the weights.
        device: torch device for the model, e.g. ``"cpu"`` or ``"cuda"``.

    Attributes:
        model_: the trained ``ebrl.boltzmann.BernoulliRBM``.
        components_: weights ``(n_components, n_features)`` (W transposed).
        intercept_hidden_: ``(n_components,)``. intercept_visible_: ``(n_features,)``.
        h_samples_: hidden states of the persistent chains ``(batch_size, n_components)``.
        n_features_in_: number of features seen in ``fit``.
    """

    def __init__(
        self,
        n_components: int = 256,
        *,
        learning_rate: float = 0.1,
        batch_size: int = 10,
        n_iter: int = 10,
        verbose: int = 0,
        random_state: Any = None,
        method: str = "pcd",
        k: int = 1,
        momentum: float = 0.0,
        weight_decay: float = 0.0,
        device: str = "cpu",
    ) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.verbose = verbose
        self.random_state = random_state
        self.method = method
        self.k = k
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.device = device

    # ------------------------------------------------------------------------------ helpers
    def _check_params(self) -> None:
        check_int("n_components", self.n_components)
        check_positive("learning_rate", self.learning_rate)
        check_int("batch_size", self.batch_size)
        check_int("n_iter", self.n_iter)
        try:
            device = torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', got {self.device!r}") from exc
        if device.type == "meta":
            raise ValueError("device must hold data, e.g. 'cpu' or 'cuda'; got 'meta'")

    def _validate(self, X: Any, *, reset: bool) -> np.ndarray:
        try:
            X = check_array(X, dtype=(np.float64, np.float32))
        except ValueError as exc:
            raise ValueError(f"X must be a finite numeric matrix (n_samples, n_features): {exc}") from exc
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} features"
            )
        if X.min() < 0 or X.max() > 1:
            raise ValueError(
                f"X must hold values in [0, 1] (probabilities of binary units), got [{X.min()}, {X.max()}]"
            )
        return X

    def _tensor(self, X: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(X, dtype=torch.float32, device=self.model_.weight.device)

    def _new_model(self, n_features: int) -> None:
        self._check_params()
        self.generator_ = _seed_generator(self.random_state)
        model = BernoulliRBM(n_features, self.n_components, init_std=0.01, generator=self.generator_)
        self.model_ = model.to(self.device)
        if self.model_.weight.device.type != "cpu":
            # Training randomness must come from a generator on the model's device.
            seed = int(torch.randint(np.iinfo(np.int32).max, (1,), generator=self.generator_))
            self.generator_ = torch.Generator(device=self.model_.weight.device).manual_seed(seed)

    # -------------------------------------------------------------------------------- API
    def fit(self, X: Any, y: Any = None) -> BernoulliRBMEstimator:
        """Fit the model to ``X (n_samples, n_features)`` with values in [0, 1]. ``y`` is ignored."""
        X = self._validate(X, reset=True)
        self._new_model(X.shape[1])
        begin = time.perf_counter()

        def report(epoch: int, model: BernoulliRBM) -> None:
            nonlocal begin
            pl = float(self.score_samples(X).mean())
            end = time.perf_counter()
            print(f"[{type(self).__name__}] Iteration {epoch + 1}, pseudo-likelihood = {pl:.2f}, "
                  f"time = {end - begin:.2f}s")
            begin = end

        self.model_.fit(
            self._tensor(X), method=self.method, epochs=self.n_iter, batch_size=self.batch_size,
            learning_rate=self.learning_rate, k=self.k, momentum=self.momentum, weight_decay=self.weight_decay,
            soft=True, shuffle=False, callback=report if self.verbose else None, generator=self.generator_,
        )
        return self

    def partial_fit(self, X: Any, y: Any = None) -> BernoulliRBMEstimator:
        """One update with ``X`` as the minibatch (creating the model on the first call)."""
        first = not hasattr(self, "model_")
        X = self._validate(X, reset=first)
        if first:
            self._new_model(X.shape[1])
        self.model_.partial_fit(
            self._tensor(X), method=self.method, learning_rate=self.learning_rate, k=self.k,
            momentum=self.momentum, weight_decay=self.weight_decay, n_chains=self.batch_size, soft=True,
            generator=self.generator_,
        )
        return self

    def transform(self, X: Any) -> np.ndarray:
        """Hidden-unit probabilities p(h = 1 | X), ``(n_samples, n_components)``, in X's dtype."""
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        with torch.no_grad():
            h = self.model_.hidden_mean(self._tensor(X))
        return h.cpu().numpy().astype(X.dtype, copy=False)

    def score_samples(self, X: Any) -> np.ndarray:
        """scikit-learn's stochastic pseudo-likelihood, ``(n_samples,)``.

        As in scikit-learn, for each sample one feature i is chosen at random (seeded by
        ``random_state``, so repeated calls agree), x⁽ⁱ⁾ is x with x_i replaced by 1 - x_i, and
        the score is n_features · log σ(F(x⁽ⁱ⁾) - F(x)), computed in float64. For binary x its
        expectation over i is the exact pseudo-likelihood, which ``pseudo_likelihood`` (and
        ``ebrl.boltzmann.pseudo_log_likelihood``) compute by summing all n_features terms.
        """
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        x = torch.as_tensor(X, dtype=torch.float64)  # (n, V)
        gen = _seed_generator(self.random_state)
        idx = torch.randint(x.shape[1], (x.shape[0],), generator=gen)  # (n,)
        rows = torch.arange(x.shape[0])
        x_flip = x.clone()
        x_flip[rows, idx] = 1 - x_flip[rows, idx]
        model = self.model_
        with torch.no_grad():
            w = model.weight.detach().cpu().double()
            b = model.visible_bias.detach().cpu().double()
            c = model.hidden_bias.detach().cpu().double()

            def free_energy(v: torch.Tensor) -> torch.Tensor:
                return -(v @ b) - torch.nn.functional.softplus(torch.addmm(c, v, w)).sum(1)

            score = x.shape[1] * torch.nn.functional.logsigmoid(free_energy(x_flip) - free_energy(x))
        return score.numpy()

    def pseudo_likelihood(self, X: Any) -> np.ndarray:
        """The exact log pseudo-likelihood of binary ``X``, summing all n_features terms, ``(n_samples,)``."""
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        return pseudo_log_likelihood(self.model_, X).cpu().numpy()

    def gibbs(self, v: Any) -> np.ndarray:
        """One Gibbs step v → h → v', returning binary visible samples ``(n_samples, n_features)``."""
        check_is_fitted(self)
        v = self._validate(v, reset=False)
        with torch.no_grad():
            h = bernoulli(self.model_.hidden_mean(self._tensor(v)), self.generator_)
            v_new = bernoulli(self.model_.visible_mean(h), self.generator_)
        return v_new.cpu().numpy().astype(v.dtype, copy=False)

    # -------------------------------------------------------------------- fitted attributes
    @property
    def components_(self) -> np.ndarray:
        check_is_fitted(self)
        return self.model_.weight.detach().T.cpu().double().numpy()

    @property
    def intercept_hidden_(self) -> np.ndarray:
        check_is_fitted(self)
        return self.model_.hidden_bias.detach().cpu().double().numpy()

    @property
    def intercept_visible_(self) -> np.ndarray:
        check_is_fitted(self)
        return self.model_.visible_bias.detach().cpu().double().numpy()

    @property
    def h_samples_(self) -> np.ndarray:
        check_is_fitted(self)
        state = self.model_._train_state
        if state is None or state.chains is None:
            raise AttributeError("h_samples_ exists after training with method='pcd'")
        return state.chains.cpu().double().numpy()

    @property
    def _n_features_out(self) -> int:
        return self.n_components
