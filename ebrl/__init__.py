"""ebrl: energy-based models and their use in reinforcement learning.

Sign convention, for the whole library: lower energy means more probable,
p(x) ∝ exp(-E(x)/T); for RL, E(s, a) = -Q(s, a).
"""

from ebrl._checks import MissingExtraError as MissingExtraError
from ebrl._version import __version__ as __version__
from ebrl.checkpoint import CheckpointError as CheckpointError
from ebrl.checkpoint import load_model as load_model
from ebrl.checkpoint import save_model as save_model
