"""State energies as value priors: the potential Φ(s) = -E(s)/T and potential-based shaping.

A state energy E(s), fitted to states from demonstrations or good episodes with any ebrl loss, is
low where good states are. Its potential Φ(s) = -E(s)/T serves as a value prior:

- shaping (Ng, Harada & Russell 1999): r' = r + γ Φ(s') - Φ(s) leaves the optimal policy unchanged,
  provided Φ(terminal) = 0 (the absorbing state after a termination has potential 0, so the term
  is -Φ(s) on a terminating step). A truncation (time limit) is not a terminal state: it keeps
  γΦ(s'), as the bootstrap does.
- the offset: Φ - c is as valid a potential as Φ (same optimal policy, for any constant c), but
  not as useful. The step into a terminal state pays r - Φ(s), so a potential that is large
  where episodes end cancels the goal's reward until the values catch up; ``offset`` = Φ at the
  terminal (goal) states makes that step pay about r.
- the scale: the shaped task's values are Q - Φ, so a potential that plunges far from the
  demonstrations (an energy fitted by NCE can reach -90 there) makes the critic learn values of that
  size, and makes standing still there pay (1 - γ)|Φ| per step until they are learnt. ``floor``
  bounds Φ from below (Φ = max(-E/T - c, floor)), keeping the shaped values within |floor| of the
  raw ones; the potential is still a fixed function of the state, so the optimal policy is unchanged.
- initialisation (Wiewiora 2003): Q-learning with Q₀(s, a) = Φ(s) and no shaping makes the same
  updates, and the same greedy and Boltzmann choices, as Q-learning with Q₀ = 0 on shaped rewards.

A state-action energy E(s, a), fitted to demonstrations by implicit BC (InfoNCE), is a prior on Q
itself: ``StateActionPrior`` gives Ψ(s, a) = -E(s, a)/T, and a critic that learns a residual on it,
Q(s, a) = Ψ(s, a) + Q_net(s, a), starts (with Q_net = 0) where the demonstrations' Boltzmann policy
is: π(a|s) ∝ exp(Q/α) = exp(-E/(Tα)), which is implicit BC's own policy exp(-E) when T = 1/α.
Unlike Φ(s), Ψ changes which action looks best, so it is not policy-preserving: the learnt Q_net
must undo it where the demonstrations are wrong.

Pure torch; the gymnasium wrappers live in ``envs.wrappers``.
"""

from __future__ import annotations

from torch import Tensor, nn

from ebrl._checks import check_finite, check_has_data, check_int, check_number, check_positive, check_tensor
from ebrl.energy import StateActionEnergy


class StatePrior(nn.Module):
    """Φ(s) = max(-E(s)/T - c, floor) for a state energy ``E: (B, O) -> (B,)``.

    Args:
        energy: the state energy (e.g. an ``MLPEnergy(O)`` fitted by ``ebrl.training.fit``).
        obs_dim: O, the observation size it was trained on; other sizes raise ``ValueError``.
        temperature: T > 0; it sets the scale of the potential against the rewards.
        offset: c, subtracted: Φ(s) = -E(s)/T - c. Set it to the potential of the states where
            episodes terminate (e.g. the mean of -E/T over demonstrated goal states), so that Φ ≈ 0
            there, like the absorbing state's; see the module docstring.
        floor: a lower bound on Φ, or ``None`` (unbounded); see the module docstring.
    """

    def __init__(
        self,
        energy: nn.Module,
        obs_dim: int,
        *,
        temperature: float = 1.0,
        offset: float = 0.0,
        floor: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(energy, nn.Module):
            raise TypeError(f"energy must be a torch.nn.Module, got {type(energy).__name__}")
        obs_dim = check_int("obs_dim", obs_dim)
        event = getattr(energy, "event_shape", None)
        if event is not None and tuple(event) != (obs_dim,):
            raise ValueError(f"energy was built for inputs of shape {tuple(event)}, but obs_dim is {obs_dim}")
        self.energy, self.obs_dim = energy, obs_dim
        self.temperature = check_positive("temperature", temperature)
        self.offset = check_number("offset", offset)
        self.floor = None if floor is None else check_number("floor", floor)

    def forward(self, obs: Tensor) -> Tensor:
        """Φ(obs) ``(B,)`` for ``obs (B, O)``; raises ``ValueError`` for another observation size."""
        check_tensor("obs", obs, min_dim=2)
        if obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            raise ValueError(
                f"the prior was trained on observations of size {self.obs_dim}, got obs of shape {tuple(obs.shape)}"
            )
        check_finite("obs", obs)
        phi = -self.energy(obs) / self.temperature - self.offset  # (B,)
        return phi if self.floor is None else phi.clamp(min=self.floor)


class StateActionPrior(nn.Module):
    """Ψ(s, a) = -E(s, a)/T for a state-action energy ``E: (B, O), (B, [N,] A) -> (B, [N])``.

    A prior on Q(s, a) (``SoftQ(action_prior=...)`` learns Q = Ψ + Q_net), e.g. an energy trained by
    implicit BC (``agents.IBC``) on demonstrations. Its energy must score the actions the agent uses
    (SoftQ's are SB3's scaled actions in [-1, 1]^A) and the flattened observations.

    The scale: SoftQ's policy at temperature α is π ∝ exp(Q/α), so with Q_net = 0 it is
    exp(-E/(Tα)); ``temperature = 1/α`` makes it the energy's own Boltzmann policy exp(-E) (implicit
    BC's, trained at InfoNCE temperature 1). InfoNCE fixes E only up to a function of the state, so Ψ
    also carries an arbitrary state-dependent term c(s)/T; on Q this acts as a potential (Wiewiora 2003)
    and does not change the optimal policy.

    Args:
        energy: an ``ebrl.energy.StateActionEnergy`` over (O, A).
        temperature: T > 0.
    """

    def __init__(self, energy: StateActionEnergy, *, temperature: float = 1.0) -> None:
        super().__init__()
        if not isinstance(energy, StateActionEnergy):
            raise TypeError(f"energy must be an ebrl.energy.StateActionEnergy, got {type(energy).__name__}")
        self.energy = energy
        self.obs_dim, self.act_dim = energy.obs_dim, energy.act_dim
        self.temperature = check_positive("temperature", temperature)

    def forward(self, obs: Tensor, act: Tensor) -> Tensor:
        """Ψ ``(B,)`` for ``act (B, A)``, or ``(B, N)`` for ``act (B, N, A)``; checks shapes and finiteness."""
        return check_finite("the state-action prior's output", self.energy(obs, act) / -self.temperature)

    def potential(self, obs: Tensor, act: Tensor) -> Tensor:
        """``forward`` without the checks (no host synchronisation), for callers that check once themselves."""
        return self.energy.forward(obs, act) / -self.temperature

    def extra_repr(self) -> str:
        return f"obs_dim={self.obs_dim}, act_dim={self.act_dim}, temperature={self.temperature}"


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
