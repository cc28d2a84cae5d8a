"""State energies as value priors: the potential Φ(s) = -E(s)/T and potential-based shaping.

A state energy E(s), fitted to states from demonstrations or good episodes with any ebrl loss, is
low where good states are. Its potential Φ(s) = -E(s)/T serves as a value prior:

- shaping (Ng, Harada & Russell 1999): r' = r + γ Φ(s') - Φ(s) leaves the optimal policy unchanged,
  provided Φ(terminal) = 0 (the absorbing state after a termination has potential 0, so the term
  is -Φ(s) on a terminating step). A truncation (time limit) is not a terminal state: it keeps
  γΦ(s'), as the bootstrap does.
- initialisation (Wiewiora 2003): Q-learning with Q₀(s, a) = Φ(s) and no shaping makes the same
  updates, and the same greedy and Boltzmann choices, as Q-learning with Q₀ = 0 on shaped rewards.

Pure torch; the gymnasium wrappers live in ``envs.wrappers``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ebrl._checks import check_finite, check_has_data, check_int, check_positive, check_tensor


class StatePrior(nn.Module):
    """Φ(s) = -E(s)/T for a state energy ``E: (B, O) -> (B,)``.

    Args:
        energy: the state energy (e.g. an ``MLPEnergy(O)`` fitted by ``ebrl.training.fit``).
        obs_dim: O, the observation size it was trained on; other sizes raise ``ValueError``.
        temperature: T > 0; it sets the scale of the potential against the rewards.
    """

    def __init__(self, energy: nn.Module, obs_dim: int, *, temperature: float = 1.0) -> None:
        super().__init__()
        if not isinstance(energy, nn.Module):
            raise TypeError(f"energy must be a torch.nn.Module, got {type(energy).__name__}")
        obs_dim = check_int("obs_dim", obs_dim)
        event = getattr(energy, "event_shape", None)
        if event is not None and tuple(event) != (obs_dim,):
            raise ValueError(f"energy was built for inputs of shape {tuple(event)}, but obs_dim is {obs_dim}")
        self.energy, self.obs_dim = energy, obs_dim
        self.temperature = check_positive("temperature", temperature)

    def forward(self, obs: Tensor) -> Tensor:
        """Φ(obs) ``(B,)`` for ``obs (B, O)``; raises ``ValueError`` for another observation size."""
        check_tensor("obs", obs, min_dim=2)
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"the prior was trained on observations of size {self.obs_dim}, got obs of shape {tuple(obs.shape)}"
            )
        check_finite("obs", obs)
        return -self.energy(obs) / self.temperature


def shaping_term(phi: Tensor, phi_next: Tensor, terminated: Tensor, *, gamma: float) -> Tensor:
    """F = γ (1 - terminated) Φ(s') - Φ(s), all ``(B,)``: Φ of the absorbing terminal state is 0.

    ``gamma`` is the agent's discount, in [0, 1]; ``terminated`` may be bool or float.
    """
    gamma = check_positive("gamma", gamma, allow_zero=True)
    if gamma > 1:
        raise ValueError(f"gamma must be a discount in [0, 1], got {gamma}")
    check_finite("phi", check_tensor("phi", phi))
    check_finite("phi_next", check_tensor("phi_next", phi_next))
    if not isinstance(terminated, Tensor):
        raise TypeError(f"terminated must be a torch.Tensor, got {type(terminated).__name__}")
    check_has_data("terminated", terminated)
    if not bool(((terminated == 0) | (terminated == 1)).all()):
        raise ValueError("terminated must hold only 0/1 (or False/True) flags")
    if not phi.shape == phi_next.shape == terminated.shape:
        raise ValueError(
            f"phi, phi_next and terminated must have one shape, got {tuple(phi.shape)}, "
            f"{tuple(phi_next.shape)} and {tuple(terminated.shape)}"
        )
    return gamma * (1.0 - terminated.to(phi.dtype)) * phi_next - phi
