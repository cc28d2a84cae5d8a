"""Training energies: objectives (CD, PCD, DSM, SSM, NCE, InfoNCE), the ``fit`` loop, and metrics.

Example::

    g = torch.Generator().manual_seed(0)
    buffer = ReplayBuffer(10_000, (2,), low=-4, high=4, generator=g)
    objective = PCD(Langevin(step_size=1e-2, n_steps=20), buffer, l2=0.1)
    history = fit(MLPEnergy(2), data, objective, epochs=50, generator=g, progress_bar=True)

To continue a run in another process, ``save_training_state`` / ``load_training_state`` store
and restore the energy, the optimizer, the generator, PCD's replay buffer and the history.
"""

from ebrl.training.metrics import median_bandwidth, squared_mmd
from ebrl.training.multilevel import MultiLevelDSM, labelled_rows
from ebrl.training.objectives import CD, DSM, NCE, PCD, SSM, InfoNCE, Objective
from ebrl.training.state import load_training_state, save_training_state
from ebrl.training.trainer import TrainHistory, fit

__all__ = [
    "CD",
    "DSM",
    "NCE",
    "PCD",
    "SSM",
    "InfoNCE",
    "MultiLevelDSM",
    "Objective",
    "TrainHistory",
    "fit",
    "labelled_rows",
    "load_training_state",
    "median_bandwidth",
    "save_training_state",
    "squared_mmd",
]
