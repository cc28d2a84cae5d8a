"""Energy shaping and energy novelty bonuses as gymnasium wrappers (they work with any SB3 algorithm)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, SupportsFloat

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from ebrl._checks import check_finite, check_int, check_number, check_positive, check_probability, seeded_init
from ebrl.demos import load_demonstrations
from ebrl.energy import MLPEnergy, UniformBox
from ebrl.rl.priors import StatePrior
from ebrl.training import NCE, fit


def _flat_obs_dim(env: gym.Env) -> int:
    if not isinstance(env.observation_space, spaces.Box):
        raise ValueError(f"the energy wrappers need a Box observation space, got {env.observation_space}")
    return int(spaces.flatdim(env.observation_space))


def _as_batch(obs: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(1, -1))  # (1, O)


class EnergyShaping(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds the potential-based shaping term F = γ Φ(s') - Φ(s) to every reward (Ng et al. 1999).

    Φ is a ``StatePrior`` (Φ = -E(s)/T - offset) or any function ``obs (B, O) -> (B,)``. On a terminating
    step Φ(s') is taken as 0 (the absorbing state), which is what keeps the optimal policy unchanged in
    episodic tasks; on a truncation (time limit) γΦ(s') is kept, as the learner bootstraps there. The
    terminating step therefore pays r - Φ(s): give the prior an ``offset`` that makes Φ ≈ 0 at the
    states where episodes end, or a goal's reward is cancelled by the potential's drop to 0. A
    non-finite potential raises ``ValueError``.
    ``gamma`` must be the learner's discount. ``info["raw_reward"]`` holds the unshaped reward and
    ``info["shaping"]`` the term F.

    Args:
        env: a gymnasium env with a Box observation space.
        prior: Φ; a ``StatePrior`` must have been trained on this observation size.
        gamma: the learner's discount γ in [0, 1].
    """

    def __init__(self, env: gym.Env, prior: StatePrior | Callable[[Tensor], Tensor], gamma: float) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, prior=prior, gamma=gamma)  # gymnasium can remake the env
        gym.Wrapper.__init__(self, env)
        obs_dim = _flat_obs_dim(env)
        if isinstance(prior, StatePrior) and prior.obs_dim != obs_dim:
            raise ValueError(
                f"prior was trained on observations of size {prior.obs_dim}, but the env's observations "
                f"have size {obs_dim}"
            )
        if not callable(prior):
            raise TypeError(f"prior must be a StatePrior or a callable obs -> potential, got {type(prior).__name__}")
        check_probability("gamma", gamma)
        self.prior, self.gamma = prior, float(gamma)
        self._phi = 0.0

    @classmethod
    def from_demonstrations(
        cls,
        env: gym.Env,
        demos: str | Path | np.ndarray,
        *,
        gamma: float,
        temperature: float = 1.0,
        offset: float | Literal["max"] = "max",
        floor: float | None = None,
        hidden: Sequence[int] = (64, 64),
        epochs: int = 200,
        seed: int = 0,
    ) -> EnergyShaping:
        """Shape ``env`` with Φ = max(-E/T - offset, floor), E an ``MLPEnergy`` fitted to demonstrated states.

        E is fitted by NCE against the uniform density on the observation box (on the demonstrations' bounding
        box, widened by a tenth of its size on each side, where the observation space is unbounded), so Φ is
        high where the demonstrations went. ``demos`` is what ``ebrl train --algo ibc --demos`` reads: a path
        ending in ``.npz`` (arrays ``observations`` (T, O) and ``actions``) or a Minari dataset id in the local
        store (``ebrl.demos.load_demonstrations``; nothing is downloaded), or an array of states ``(T, O)``.

        Args:
            env: a gymnasium env with a ``Box`` observation space of size O.
            demos: the demonstrations, as above.
            gamma: the learner's discount.
            temperature: T > 0.
            offset: a constant c, or ``"max"``: the largest -E/T over the demonstrated states, so that Φ <= 0
                on them and terminating anywhere along them never pays less than the reward (Φ of the absorbing
                state is 0; see ``ebrl.rl.priors``).
            floor: a lower bound on Φ, or ``None``.
            hidden: the energy's hidden widths.
            epochs: NCE epochs (batch 256, 4 noise samples per state).
            seed: seeds the weights, the minibatches and the noise.
        """
        obs_dim = _flat_obs_dim(env)
        if isinstance(demos, (str, Path)):
            states = load_demonstrations(demos)[0]
        elif isinstance(demos, np.ndarray):
            states = demos
        else:
            raise TypeError(f"demos must be an .npz path, a Minari dataset id or an array (T, O), got {demos!r}")
        data = torch.as_tensor(np.asarray(states, dtype=np.float32))
        if data.dim() != 2 or data.shape[1] != obs_dim or data.shape[0] == 0:
            raise ValueError(
                f"demos must hold demonstrated states of shape (T, {obs_dim}) to match the env's observations, "
                f"got shape {tuple(data.shape)}"
            )
        check_finite("demos", data)
        if offset != "max":
            check_number("offset", offset)
        box = env.observation_space
        assert isinstance(box, spaces.Box)  # _flat_obs_dim checked it
        low, high = box.low.reshape(-1).astype(np.float64), box.high.reshape(-1).astype(np.float64)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            lo, hi = data.min(dim=0).values.double().numpy(), data.max(dim=0).values.double().numpy()
            margin = 0.1 * np.maximum(hi - lo, 1e-3)
            low, high = lo - margin, hi + margin
        g = torch.Generator().manual_seed(check_int("seed", seed, minimum=0))
        with seeded_init(g):
            energy = MLPEnergy(obs_dim, tuple(hidden))
        fit(energy, data, NCE(UniformBox(low.tolist(), high.tolist()), ratio=4), epochs=check_int("epochs", epochs),
            batch_size=256, generator=g)
        energy.requires_grad_(False)
        prior = StatePrior(energy, obs_dim, temperature=temperature)
        if offset == "max":
            with torch.no_grad():
                offset = float(prior(data).max())
        return cls(env, StatePrior(energy, obs_dim, temperature=temperature, offset=offset, floor=floor), gamma)

    def potential(self, obs: np.ndarray) -> float:
        with torch.no_grad():
            phi = self.prior(_as_batch(obs))
        value = float(phi.reshape(-1)[0])
        if not np.isfinite(value):
            raise ValueError(f"the prior's potential is not finite at observation {np.asarray(obs).tolist()}")
        return value

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._phi = self.potential(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        phi_next = 0.0 if terminated else self.potential(obs)
        shaping = self.gamma * phi_next - self._phi
        self._phi = phi_next
        info = {**info, "raw_reward": float(reward), "shaping": shaping}
        return obs, float(reward) + shaping, terminated, truncated, info


class EnergyNovelty(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """Adds an exploration bonus from an energy density model of the visited states, fitted online.

    Every visited observation enters a ring buffer; every ``update_every`` steps the energy takes
    ``n_updates`` NCE steps (``ebrl.training.NCE`` against the uniform density on the observation box),
    so exp(-E) approximates the density of visited states and E(s) ≈ -log p(s). The bonus is

        b(s') = coef · clip(E(s') - log vol(box), -clip, clip),

    positive where states are visited less often than under a uniform spread, negative where more
    often. With ``nonpositive=True`` the bonus is shifted down by its bound,

        b(s') = coef · (clip(E(s') - log vol(box), -clip, clip) - clip) <= 0,

    a penalty that is smaller in rarely visited states: the same ranking of states, but no reward
    for staying alive, so that ending an episode at a goal is never a loss of future bonuses. It
    needs finite observation bounds. ``info["novelty"]`` holds b; a non-finite energy raises
    ``ValueError`` (it is never turned into a reward).

    Args:
        env: a gymnasium env with a bounded Box observation space.
        energy: an ``MLPEnergy`` over the flattened observations.
        coef: the bonus scale, >= 0.
        update_every: environment steps between model updates.
        n_updates: NCE steps per update (minibatches of ``batch_size`` from the buffer).
        buffer_size: how many recent states the model sees.
        batch_size: NCE minibatch size.
        lr: Adam's learning rate.
        clip: the bonus's bound (before ``coef``).
        nonpositive: shift the bonus to [-2·coef·clip, 0] (see above).
        seed: seeds the NCE noise and minibatches.
    """

    def __init__(
        self,
        env: gym.Env,
        energy: MLPEnergy,
        coef: float,
        *,
        update_every: int = 100,
        n_updates: int = 10,
        buffer_size: int = 10_000,
        batch_size: int = 128,
        lr: float = 1e-3,
        clip: float = 5.0,
        nonpositive: bool = False,
        seed: int = 0,
    ) -> None:
        gym.utils.RecordConstructorArgs.__init__(
            self, energy=energy, coef=coef, update_every=update_every, n_updates=n_updates, buffer_size=buffer_size,
            batch_size=batch_size, lr=lr, clip=clip, nonpositive=nonpositive, seed=seed,
        )
        gym.Wrapper.__init__(self, env)
        obs_dim = _flat_obs_dim(env)
        if not isinstance(energy, MLPEnergy) or energy.in_features != obs_dim:
            raise ValueError(f"energy must be an MLPEnergy over {obs_dim} observation features, got {energy}")
        space = env.observation_space
        low, high = np.asarray(space.low, np.float32).reshape(-1), np.asarray(space.high, np.float32).reshape(-1)
        if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
            raise ValueError(f"EnergyNovelty needs finite observation bounds, got {space}")
        for name, value in (("coef", coef), ("lr", lr), ("clip", clip)):
            check_positive(name, value, allow_zero=True)
        for name, value in (("update_every", update_every), ("n_updates", n_updates),
                            ("buffer_size", buffer_size), ("batch_size", batch_size)):
            check_int(name, value)
        check_int("seed", seed, minimum=0)
        if not isinstance(nonpositive, bool):
            raise TypeError(f"nonpositive must be a bool, got {type(nonpositive).__name__}")
        self.energy, self.coef, self.clip, self.nonpositive = energy, float(coef), float(clip), nonpositive
        self.update_every, self.n_updates, self.batch_size = update_every, n_updates, batch_size
        self.noise = UniformBox(torch.as_tensor(low), torch.as_tensor(high))
        self.log_volume = float(self.noise.log_volume)
        self.buffer = np.zeros((buffer_size, obs_dim), np.float32)
        self.n_seen = 0
        self.generator = torch.Generator().manual_seed(seed)
        self.optimizer = torch.optim.Adam(energy.parameters(), lr=lr)

    def bonus(self, obs: np.ndarray) -> float:
        """b(obs), the current novelty bonus of one observation."""
        with torch.no_grad():
            e = float(self.energy(_as_batch(obs))[0])
        if not np.isfinite(e):
            raise ValueError(f"the novelty energy is not finite at observation {np.asarray(obs).tolist()}")
        shift = self.clip if self.nonpositive else 0.0
        return self.coef * (float(np.clip(e - self.log_volume, -self.clip, self.clip)) - shift)

    def update(self) -> None:
        """``n_updates`` NCE steps on the buffered states."""
        n = min(self.n_seen, self.buffer.shape[0])
        idx = torch.randint(n, (self.n_updates * self.batch_size,), generator=self.generator)
        data = torch.as_tensor(self.buffer[:n])[idx]  # (n_updates * batch, O)
        fit(self.energy, data, NCE(self.noise), epochs=1, batch_size=self.batch_size,
            optimizer=self.optimizer, generator=self.generator)

    def _remember(self, obs: np.ndarray) -> None:
        self.buffer[self.n_seen % self.buffer.shape[0]] = np.asarray(obs, np.float32).reshape(-1)
        self.n_seen += 1
        if self.n_seen % self.update_every == 0:
            self.update()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._remember(obs)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        bonus = self.bonus(obs)
        self._remember(obs)
        info = {**info, "raw_reward": float(reward), "novelty": bonus}
        return obs, float(reward) + bonus, terminated, truncated, info
