"""Bad input at the entry points of ``ebrl.rl`` and ``agents``: property-based tests."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from _bad_inputs import (
    CUDA,
    ENERGIES,
    FEW,
    NOT_INT,
    NOT_NONNEGATIVE,
    NOT_POSITIVE,
    SA_ENERGY,
    SETTINGS,
    _gen,
    _quadratic,
    bad_batch,
    rejects,
    rejects_or_works,
)
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

import envs  # noqa: F401  (registers the ebrl/* environments)
from ebrl._checks import DivergenceError
from ebrl.energy import StateActionEnergy
from ebrl.rl import (
    ActionBox,
    ActionSampler,
    ContinuousBoltzmannPolicy,
    DerivativeFreeOptimizer,
    DiscreteBoltzmannPolicy,
    StatePrior,
    shaping_term,
)
from envs.bandit import BimodalBanditEnv

torch.set_num_threads(1)

BOX = ActionBox((-1.0, -1.0), (1.0, 1.0))


@SETTINGS
@given(data=st.data(), method=st.sampled_from(["logits", "log_probs", "probs", "entropy", "soft_value", "mode",
                                               "sample"]))
def test_discrete_policy_rejects_bad_energies(data: st.DataObject, method: str) -> None:
    pi = DiscreteBoltzmannPolicy()
    kind = data.draw(st.sampled_from(["batch", "nan", "neg_inf", "all_pos_inf"]))
    if kind == "batch":
        _, e = data.draw(bad_batch((3,)))
        if (isinstance(e, torch.Tensor) and e.dim() == 2 and e.is_floating_point() and e.shape[0] > 0
                and e.device.type != "meta" and e.shape[1] > 0
                and not bool((torch.isnan(e) | (e == -math.inf)).any() | torch.isinf(e).all(1).any())):
            return  # (B, K) with any K >= 1, +inf masking some actions, is valid
    else:
        e = torch.zeros(2, 3)
        e[data.draw(st.integers(0, 1))] = {"nan": math.nan, "neg_inf": -math.inf, "all_pos_inf": math.inf}[kind]
        if kind == "nan":
            e[0, 1] = 0.0
    kwargs = {} if method == "mode" else {"alpha": 0.5}
    rejects(f"rl: DiscreteBoltzmannPolicy.{method}", lambda: getattr(pi, method)(e, **kwargs), "energies")


@FEW
@given(alpha=NOT_POSITIVE)
def test_discrete_policy_rejects_bad_alpha(alpha: Any) -> None:
    pi = DiscreteBoltzmannPolicy()
    rejects("rl: DiscreteBoltzmannPolicy.probs", lambda: pi.probs(torch.zeros(1, 2), alpha=alpha), "alpha")


@FEW
@given(masked=st.lists(st.booleans(), min_size=3, max_size=3).filter(lambda m: not all(m)))
def test_discrete_policy_masks_actions_with_positive_infinite_energy(masked: list[bool]) -> None:
    pi = DiscreteBoltzmannPolicy()
    e = torch.zeros(1, 3)
    e[0, torch.tensor(masked)] = math.inf

    def check(p: torch.Tensor) -> None:
        assert torch.allclose(p[0, torch.tensor(masked)], torch.zeros(sum(masked)))
        assert math.isclose(float(p.sum()), 1.0, rel_tol=1e-6)

    rejects_or_works("rl: DiscreteBoltzmannPolicy.probs", lambda: pi.probs(e, alpha=0.5), "energies", check=check)


@SETTINGS
@given(
    low=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([[], "a", None, [0.0, 2.0]])),
    high=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([[1.0, 1.0, 1.0], "b"])),
)
def test_action_box_rejects_bad_bounds_or_works(low: Any, high: Any) -> None:
    def check(box: ActionBox) -> None:
        a = box.uniform((3,), device=torch.device("cpu"), dtype=torch.float32, generator=_gen())
        assert math.isfinite(box.log_volume) and a.shape == (3, box.dim)

    rejects_or_works("rl: ActionBox()", lambda: ActionBox(low, high), "low", "high", check=check)


@FEW
@given(
    batch_shape=st.one_of(st.lists(st.integers(-3, 3), max_size=2), st.sampled_from([(1.5,), (True,), ("a",)])),
    dtype=st.sampled_from([torch.float32, torch.float64, torch.int64, torch.bool, "float32"]),
)
def test_action_box_uniform_rejects_bad_shapes_and_dtypes_or_works(batch_shape: Any, dtype: Any) -> None:
    def check(a: torch.Tensor) -> None:
        assert a.shape == (*batch_shape, 2) and bool(((a >= -1) & (a <= 1)).all())

    rejects_or_works("rl: ActionBox.uniform", lambda: BOX.uniform(batch_shape, device=torch.device("cpu"),
                                                                   dtype=dtype, generator=_gen()),
                     "batch_shape[i]", "dtype", check=check)


@FEW
@given(dim=st.one_of(NOT_INT, st.integers(1, 3)), bound=st.one_of(NOT_POSITIVE, st.floats(0.1, 3.0)))
def test_action_box_symmetric_rejects_bad_arguments_or_works(dim: Any, bound: Any) -> None:
    rejects_or_works("rl: ActionBox.symmetric", lambda: ActionBox.symmetric(dim, bound), "dim", "bound")


CONT_FIELDS: dict[str, Any] = {
    "box": st.sampled_from([None, (0.0, 1.0), "box"]),
    "sampler": st.sampled_from([None, "mala", 3]), "value_sampler": st.sampled_from([None, "smc"]),
    "mode_candidates": NOT_INT, "mode_starts": st.one_of(NOT_INT, st.just(10_000)), "mode_steps": NOT_INT,
    "mode_step_init": NOT_POSITIVE, "mode_step_final": NOT_POSITIVE,
}

SAMPLER_FIELDS: dict[str, Any] = {
    "n_particles": st.one_of(NOT_INT, st.just(1)), "n_levels": NOT_INT,
    "n_moves": st.one_of(st.integers(max_value=-1), st.booleans(), st.just(1.5), st.none()),
    "kernel": st.sampled_from(["hmc", None]), "boundary": st.sampled_from(["wrap", None, "reflect"]),
    "grad_clip": NOT_POSITIVE.filter(lambda v: v is not None),
    "ess_fraction": st.one_of(NOT_POSITIVE, st.floats(1.0, 10.0)),
    "target_accept": st.one_of(NOT_POSITIVE.filter(lambda v: v is not None), st.just(1.0)),
    "min_ess": st.one_of(NOT_NONNEGATIVE, st.just(1.0)), "min_accept": st.one_of(NOT_NONNEGATIVE, st.just(2.0)),
}
SMALL_SAMPLER = ActionSampler(n_particles=4, n_levels=2, n_moves=1)


@SETTINGS
@given(data=st.data())
def test_continuous_policy_constructor_rejects_bad_arguments(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(CONT_FIELDS)))
    kwargs = {"box": BOX, field: data.draw(CONT_FIELDS[field])}
    rejects("rl: ContinuousBoltzmannPolicy()", lambda: ContinuousBoltzmannPolicy(**kwargs), field)


@SETTINGS
@given(data=st.data())
def test_action_sampler_rejects_bad_settings(data: st.DataObject) -> None:
    field = data.draw(st.sampled_from(sorted(SAMPLER_FIELDS)))
    kwargs = {field: data.draw(SAMPLER_FIELDS[field])}
    rejects("rl: ActionSampler()", lambda: ActionSampler(**kwargs), field, "kernel")


@SETTINGS
@given(
    data=st.data(),
    method=st.sampled_from(["sample", "mode", "soft_value", "entropy"]),
    field=st.sampled_from(["obs", "n", "energy", "alpha"]),
    energy_kind=st.sampled_from(["module", "closure"]),
)
def test_continuous_policy_methods_reject_bad_arguments(
    data: st.DataObject, method: str, field: str, energy_kind: str
) -> None:
    pi = ContinuousBoltzmannPolicy(
        BOX, sampler=SMALL_SAMPLER, value_sampler=SMALL_SAMPLER, mode_candidates=8, mode_starts=2, mode_steps=2
    )
    energy: Any = SA_ENERGY if energy_kind == "module" else (lambda o, a: a.square().sum(-1) + o.sum(-1, True))
    obs: Any = torch.zeros(2, 3)
    kwargs: dict[str, Any] = {"generator": _gen()}
    if method != "mode":
        kwargs["alpha"] = 0.5
    name = field
    if field == "obs":
        kind, obs = data.draw(bad_batch((3,)))
        if energy_kind == "closure" and kind == "event" and obs.dim() == 2:
            return  # a closure accepts any observation width
    elif field == "n":
        if method != "sample":
            return
        kwargs["n"] = data.draw(st.one_of(NOT_INT, st.just(SMALL_SAMPLER.n_particles + 1)))
    elif field == "alpha":
        if method == "mode":
            return
        kwargs["alpha"] = data.draw(st.one_of(
            NOT_POSITIVE, st.sampled_from([torch.tensor(-1.0), torch.tensor(math.nan), torch.ones(2)])
        ))
    else:
        energy = data.draw(st.sampled_from([
            StateActionEnergy(4, 2, (4,)), StateActionEnergy(3, 3, (4,)), lambda o, a: a.sum(-1, True),
            lambda o, a: a.sum(), None,
        ]))
        name = "energy"
    rejects(f"rl: ContinuousBoltzmannPolicy.{method}", lambda: getattr(pi, method)(energy, obs, **kwargs),
            name, "obs", "act")


@pytest.mark.parametrize("method", ["sample", "soft_value", "entropy"])
def test_energy_that_turns_nan_mid_chain_raises_and_never_returns_nan_actions(method: str) -> None:
    """NaN energies away from the start (here: for actions with a1 > 0.5) raise DivergenceError naming the energy."""

    def energy(obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        e = 50 * (act - 0.7).square().sum(-1)  # (B, N): pulls the chains into the NaN region
        return torch.where(act[..., 0] > 0.5, torch.full_like(e, math.nan), e)

    pi = ContinuousBoltzmannPolicy(BOX, sampler=SMALL_SAMPLER, value_sampler=SMALL_SAMPLER)
    with pytest.raises(DivergenceError, match="energy"):
        getattr(pi, method)(energy, torch.zeros(64, 3), alpha=0.5, generator=_gen())


DFO_FIELDS: dict[str, Any] = {
    "box": st.sampled_from([None, (0.0, 1.0)]), "n_samples": NOT_INT,
    "n_iters": st.one_of(st.integers(max_value=-1), st.booleans(), st.just(1.5), st.none()),
    "noise_scale": NOT_POSITIVE, "noise_shrink": st.one_of(NOT_POSITIVE, st.floats(1.0, 10.0, exclude_min=True)),
    "temperature": NOT_POSITIVE,
}


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["ctor", "minimize", "sample"]))
def test_dfo_rejects_bad_arguments(data: st.DataObject, which: str) -> None:
    if which == "ctor":
        field = data.draw(st.sampled_from(sorted(DFO_FIELDS)))
        kwargs = {"box": BOX, field: data.draw(DFO_FIELDS[field])}
        rejects("rl: DerivativeFreeOptimizer()", lambda: DerivativeFreeOptimizer(**kwargs), field)
        return
    dfo = DerivativeFreeOptimizer(BOX, n_samples=8, n_iters=1)
    field = data.draw(st.sampled_from(["obs", "energy"]))
    obs: Any = torch.zeros(2, 3)
    energy: Any = SA_ENERGY
    if field == "obs":
        _, obs = data.draw(bad_batch((3,)))
    else:
        energy = data.draw(st.sampled_from([StateActionEnergy(4, 2, (4,)), StateActionEnergy(3, 3, (4,)),
                                            lambda o, a: a.sum(), None]))
    rejects(f"rl: DerivativeFreeOptimizer.{which}", lambda: getattr(dfo, which)(energy, obs, generator=_gen()),
            field, "obs", "act")


@SETTINGS
@given(data=st.data(), which=st.sampled_from(["ctor", "forward", "shaping_term"]))
def test_state_prior_and_shaping_reject_bad_arguments(data: st.DataObject, which: str) -> None:
    energy = ENERGIES["MLPEnergy"][0]
    if which == "ctor":
        field = data.draw(st.sampled_from(["energy", "obs_dim", "temperature"]))
        kwargs: dict[str, Any] = {"energy": energy, "obs_dim": 2}
        kwargs[field] = data.draw({"energy": st.sampled_from([None, _quadratic, "E"]),
                                   "obs_dim": st.one_of(NOT_INT, st.just(3), st.just("2")),
                                   "temperature": NOT_POSITIVE}[field])
        rejects("rl: StatePrior()", lambda: StatePrior(kwargs.pop("energy"), kwargs.pop("obs_dim"), **kwargs),
                field)
    elif which == "forward":
        prior = StatePrior(energy, 2)
        _, obs = data.draw(bad_batch((2,)))
        rejects("rl: StatePrior.forward", lambda: prior(obs), "obs")
    else:
        field = data.draw(st.sampled_from(["phi", "phi_next", "terminated", "gamma"]))
        args: dict[str, Any] = {"phi": torch.zeros(3), "phi_next": torch.zeros(3), "terminated": torch.zeros(3)}
        gamma: Any = 0.9
        if field == "gamma":
            gamma = data.draw(st.one_of(NOT_NONNEGATIVE, st.floats(1.0, 10.0, exclude_min=True)))
        else:
            args[field] = data.draw(st.sampled_from([
                torch.zeros(4), torch.zeros(3, 1), None, [0.0, 0.0, 0.0], torch.full((3,), math.nan),
                torch.zeros(3, device="meta"),
            ]))
        rejects("rl: shaping_term", lambda: shaping_term(**args, gamma=gamma), field, "phi", "phi_next",
                "terminated")


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA; the CPU cases ('meta' tensors, wrong dtypes) always run")
@pytest.mark.parametrize("case", ["policy_obs", "discrete_generator"])
def test_cross_device_inputs_to_policies_are_rejected_naming_the_argument(case: str) -> None:
    """A CUDA observation for a CPU energy, or a CPU generator for CUDA energies, fails with a named error."""
    cuda = torch.device("cuda")
    calls: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
        "policy_obs": (lambda: ContinuousBoltzmannPolicy(BOX, sampler=SMALL_SAMPLER).sample(
            SA_ENERGY, torch.zeros(2, 3, device=cuda), alpha=0.5), ("obs",)),
        "discrete_generator": (lambda: DiscreteBoltzmannPolicy().sample(torch.zeros(2, 3, device=cuda), alpha=0.5,
                                                                        generator=_gen()), ("generator",)),
    }
    call, names = calls[case]
    rejects(f"devices: {case}", call, *names)


# -------------------------------------------------------------------------------------- agents


class _UnboundedEnv(gym.Env):
    """A one-step env with an unbounded Box action space (no agent here can act on it)."""

    observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = spaces.Box(-np.inf, np.inf, shape=(2,), dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action: np.ndarray):
        return np.zeros(2, dtype=np.float32), 0.0, True, False, {}


class _DiscreteEnv(_UnboundedEnv):
    action_space = spaces.Discrete(3)


BAD_SPACES = {"SoftQ": ["unbounded", "discrete"], "SoftDQN": ["unbounded", "box"], "IBC": ["unbounded", "discrete"],
              "EnergyPolicy": ["unbounded", "discrete"]}


@settings(SETTINGS, max_examples=30)
@given(
    data=st.data(), algo=st.sampled_from(sorted(BAD_SPACES)), case=st.sampled_from(["alpha", "space", "target_entropy"])
)
def test_agent_constructors_reject_bad_alpha_and_action_spaces(data: st.DataObject, algo: str, case: str) -> None:
    from agents import IBC, EnergyInference, EnergyPolicy, SoftDQN, SoftQ

    if case == "alpha":
        alpha = data.draw(st.one_of(NOT_POSITIVE, st.sampled_from(["autox", "auto_-1", "auto_nan"])))
        call: Callable[[], Any] = {
            "SoftQ": lambda: SoftQ("MlpPolicy", BimodalBanditEnv(), alpha=alpha),
            "SoftDQN": lambda: SoftDQN("MlpPolicy", _DiscreteEnv(), alpha=alpha),
            "IBC": lambda: IBC(BimodalBanditEnv().observation_space, BimodalBanditEnv().action_space,
                               temperature=alpha),
            "EnergyPolicy": lambda: EnergyInference(alpha=alpha),
        }[algo]
        rejects(f"agents: {algo}()", call, "temperature" if algo == "IBC" else "alpha")
        return
    if case == "target_entropy":
        if algo not in ("SoftQ", "SoftDQN"):
            return
        target = data.draw(st.sampled_from([math.nan, math.inf, "autox", None, "1.0"]))
        env = BimodalBanditEnv() if algo == "SoftQ" else _DiscreteEnv()
        cls = SoftQ if algo == "SoftQ" else SoftDQN
        rejects(f"agents: {algo}()", lambda: cls("MlpPolicy", env, target_entropy=target), "target_entropy")
        return
    env = {"unbounded": _UnboundedEnv, "discrete": _DiscreteEnv, "box": BimodalBanditEnv}[
        data.draw(st.sampled_from(BAD_SPACES[algo]))]()
    call = {
        "SoftQ": lambda: SoftQ("MlpPolicy", env),
        "SoftDQN": lambda: SoftDQN("MlpPolicy", env),
        "IBC": lambda: IBC(env.observation_space, env.action_space),
        "EnergyPolicy": lambda: EnergyPolicy(env.observation_space, env.action_space),
    }[algo]
    rejects(f"agents: {algo}()", call, "action_space", "action", algo)
