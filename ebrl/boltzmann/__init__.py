"""Boltzmann machines and RBMs, with exact and AIS log-partition functions.

Every model is an ``Energy`` over its visible units through the free energy F(v), with the
library's sign: p(v) ∝ exp(-F(v)). ``BernoulliRBM.fit`` trains by CD-k or PCD, through
``ebrl.training.fit`` with the ``GibbsCD`` objective (which writes its closed-form gradients itself);
``exact_log_partition`` enumerates small models, ``ais_log_partition`` estimates log Z for any
size; ``Gibbs`` is the matching ebrl sampler. The scikit-learn estimator lives in
``ebrl.boltzmann.sklearn`` (it needs ``ebrl[sklearn]``)::

    from ebrl.boltzmann import BernoulliRBM, ais_log_partition, log_likelihood
    rbm = BernoulliRBM(n_visible=64, n_hidden=128).fit(X, method="pcd", epochs=20)
    log_z, stderr = ais_log_partition(rbm, n_chains=256, n_temperatures=10_000, data=X)
"""

from ebrl.boltzmann.base import BoltzmannModel, TrainState
from ebrl.boltzmann.bm import BoltzmannMachine
from ebrl.boltzmann.dbn import DBN
from ebrl.boltzmann.gibbs import Gibbs
from ebrl.boltzmann.objective import GibbsCD
from ebrl.boltzmann.partition import (
    AISResult,
    ais,
    ais_log_partition,
    beta_schedule,
    exact_log_partition,
    log_likelihood,
    pseudo_log_likelihood,
)
from ebrl.boltzmann.rbm import BernoulliRBM, GaussianBernoulliRBM

__all__ = [
    "DBN",
    "AISResult",
    "BernoulliRBM",
    "BoltzmannMachine",
    "BoltzmannModel",
    "GaussianBernoulliRBM",
    "Gibbs",
    "GibbsCD",
    "TrainState",
    "ais",
    "ais_log_partition",
    "beta_schedule",
    "exact_log_partition",
    "log_likelihood",
    "pseudo_log_likelihood",
]
