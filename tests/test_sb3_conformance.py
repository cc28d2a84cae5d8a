"""SoftQ and SoftDQN under SB3's own usage patterns: policy aliases, Dict and image observations, HER, load with
kwargs, batch norm in the targets, SAC-style ``net_arch``, multi-axis Box actions, save/load on every kind of
observation, VecNormalize, frame stacking, the training mode, and one clear error for what SB3 cannot take."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3 import HerReplayBuffer
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.envs import BitFlippingEnv, FakeImageEnv, IdentityEnv, SimpleMultiObsEnv
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack, VecNormalize, VecTransposeImage
from torch import nn

import envs  # noqa: F401  (registers the ebrl environments)
from agents import SoftDQN, SoftQ
from ebrl.rl import ActionSampler

torch.set_num_threads(1)

CHEAP_Q = dict(
    learning_starts=20, batch_size=16, buffer_size=500,
    value_sampler=ActionSampler(n_particles=4, n_levels=1, n_moves=0),
    sampler=ActionSampler(n_particles=4, n_levels=2, n_moves=1),
)
CHEAP_DQN = dict(learning_starts=20, batch_size=16, buffer_size=500, train_freq=1)


def cheap(algo):
    return CHEAP_Q if algo is SoftQ else CHEAP_DQN


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_her_with_dict_observations_trains_saves_and_reloads(algo, tmp_path):
    env = BitFlippingEnv(n_bits=4, continuous=algo is SoftQ, max_steps=4)
    model = algo("MultiInputPolicy", env, replay_buffer_class=HerReplayBuffer,
                 replay_buffer_kwargs=dict(n_sampled_goal=2, goal_selection_strategy="future"),
                 policy_kwargs=dict(net_arch=[16]), seed=0, **cheap(algo))
    model.learn(80)
    obs, _ = env.reset(seed=1)
    act, _ = model.predict(obs, deterministic=True)
    model.save(tmp_path / "her.zip")
    again = algo.load(tmp_path / "her.zip", env=env, policy_kwargs=dict(net_arch=[16]))  # as SAC and DQN accept
    np.testing.assert_allclose(again.predict(obs, deterministic=True)[0], act, rtol=1e-6)


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
@pytest.mark.parametrize("channel_first", [True, False])
def test_cnn_policy_trains_on_image_observations(algo, channel_first):
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=algo is SoftDQN,
                       channel_first=channel_first)
    model = algo("CnnPolicy", env, policy_kwargs=dict(net_arch=[16]), seed=0, **cheap(algo))
    model.learn(40)
    act, _ = model.predict(env.observation_space.sample(), deterministic=False)
    assert env.action_space.contains(act.astype(env.action_space.dtype) if algo is SoftQ else int(act))


class BatchNormExtractor(BaseFeaturesExtractor):
    """Flatten, then batch norm: running statistics that a target network must receive."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=int(np.prod(observation_space.shape)))
        self.norm = nn.BatchNorm1d(self.features_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.norm(obs.flatten(1))


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_batch_norm_statistics_reach_the_target_networks(algo):
    env_id = "Pendulum-v1" if algo is SoftQ else "CartPole-v1"
    extra = dict(target_update_interval=10) if algo is SoftDQN else {}
    model = algo("MlpPolicy", env_id, policy_kwargs=dict(net_arch=[16], features_extractor_class=BatchNormExtractor),
                 seed=0, **cheap(algo), **extra)
    online, target = (model.critic, model.critic_target) if algo is SoftQ else (model.energy_net,
                                                                                 model.energy_net_target)
    before = target.features_extractor.norm.running_mean.clone()
    model.learn(100)
    after = target.features_extractor.norm.running_mean
    assert not torch.equal(before, after)  # the target's statistics moved ...
    assert model.batch_norm_stats_target  # ... through the copy of the online network's
    online_mean = online.features_extractor.norm.running_mean
    assert torch.allclose(after, online_mean) or algo is SoftDQN  # SoftDQN copies every target_update_interval


def test_softq_accepts_sac_style_net_arch_and_softdqn_names_what_to_pass():
    model = SoftQ("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=dict(qf=[32, 32], pi=[8])), seed=0)
    assert model.critic.e1.hidden == (32, 32)
    assert model.policy.proposal is not None and model.policy.proposal.mean.in_features == 8
    with pytest.raises(ValueError, match="qf"):
        SoftQ("MlpPolicy", "Pendulum-v1", policy_kwargs=dict(net_arch=dict(vf=[8])))
    with pytest.raises(TypeError, match="net_arch"):
        SoftDQN("MlpPolicy", "CartPole-v1", policy_kwargs=dict(net_arch=dict(qf=[8])))


class _MatrixActions(gym.Env):
    observation_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
    action_space = spaces.Box(-1.0, 1.0, shape=(2, 2), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        return np.zeros(2, dtype=np.float32), {}

    def step(self, action):
        return np.zeros(2, dtype=np.float32), 0.0, True, False, {}


def test_multi_axis_box_actions_are_refused_at_construction_naming_the_space():
    with pytest.raises(ValueError, match="1-D Box"):
        SoftQ("MlpPolicy", _MatrixActions())


# --------------------------------------------------------------------------------------------
# SB3's contracts: save/load on every kind of observation, VecNormalize, frame stacking, training mode, bad input


class _DiscreteObservations(gym.Env):
    """Discrete observations, a Box of actions (SB3's IdentityEnv for SoftQ): reward -|a - target(s)|."""

    observation_space = spaces.Discrete(4)
    action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state, self.t = int(self.np_random.integers(4)), 0
        return self.state, {}

    def step(self, action):
        reward = -abs(float(action[0]) - (self.state / 1.5 - 1.0))
        self.state, self.t = int(self.np_random.integers(4)), self.t + 1
        return self.state, reward, False, self.t >= 8, {}


def _env_of_kind(algo, kind: str) -> tuple[str, gym.Env]:
    """(policy alias, env) with ``kind`` observations: Discrete, Dict (an image and a vector) or an image."""
    discrete = algo is SoftDQN
    if kind == "discrete":
        return "MlpPolicy", IdentityEnv(dim=4, ep_length=8) if discrete else _DiscreteObservations()
    if kind == "dict":
        return "MultiInputPolicy", SimpleMultiObsEnv(discrete_actions=discrete)
    return "CnnPolicy", FakeImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=discrete)


def _batch(space: spaces.Space, n: int):
    space.seed(0)
    draws = [space.sample() for _ in range(n)]
    if isinstance(space, spaces.Dict):
        return {key: np.stack([d[key] for d in draws]) for key in space.spaces}
    return np.stack(draws)


def _flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.policy.parameters()])


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
@pytest.mark.parametrize("kind", ["discrete", "dict", "image"])
def test_save_load_gives_identical_predictions_on_every_kind_of_observation(algo, kind, tmp_path):
    policy, env = _env_of_kind(algo, kind)
    model = algo(policy, env, policy_kwargs=dict(net_arch=[16]), seed=0, **cheap(algo))
    model.learn(40)
    obs = _batch(env.observation_space, 3)
    model.save(tmp_path / "m.zip")
    loaded = algo.load(tmp_path / "m.zip", env=env)
    torch.testing.assert_close(_flat_params(loaded), _flat_params(model), rtol=0, atol=0)
    np.testing.assert_array_equal(loaded.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    model.set_random_seed(5)
    loaded.set_random_seed(5)
    np.testing.assert_array_equal(loaded.predict(obs)[0], model.predict(obs)[0])
    assert model.predict(obs)[0].shape[0] == 3


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_vec_normalize_on_two_envs_normalises_what_the_agent_learns_from_and_reloads(algo, tmp_path):
    env_id = "Pendulum-v1" if algo is SoftQ else "CartPole-v1"
    venv = VecNormalize(make_vec_env(env_id, n_envs=2, seed=0), norm_obs=True, norm_reward=True, clip_obs=5.0)
    model = algo("MlpPolicy", venv, policy_kwargs=dict(net_arch=[16]), seed=0, **cheap(algo))
    model.learn(100)
    assert model._vec_normalize_env is venv and model.n_envs == 2
    assert venv.obs_rms.count > 100  # the statistics were updated on both envs' steps
    # the replay buffer keeps raw observations; what train() samples is normalised by the running statistics
    raw = model.replay_buffer.sample(64).observations
    seen = model.replay_buffer.sample(64, env=venv).observations
    assert seen.abs().max() <= 5.0 + 1e-6 and not torch.allclose(raw, seen)

    model.save(tmp_path / "m.zip")
    venv.save(str(tmp_path / "vecnormalize.pkl"))
    again = VecNormalize.load(str(tmp_path / "vecnormalize.pkl"), make_vec_env(env_id, n_envs=1))
    again.training, again.norm_reward = False, False
    loaded = algo.load(tmp_path / "m.zip", env=again)
    obs = _batch(venv.observation_space, 4)
    np.testing.assert_array_equal(
        loaded.predict(again.normalize_obs(obs), deterministic=True)[0],
        model.predict(venv.normalize_obs(obs), deterministic=True)[0],
    )


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_frame_stacking_of_vector_observations(algo):
    env_id = "Pendulum-v1" if algo is SoftQ else "CartPole-v1"
    venv = VecFrameStack(make_vec_env(env_id, n_envs=2, seed=0), n_stack=3)
    model = algo("MlpPolicy", venv, policy_kwargs=dict(net_arch=[16]), seed=0, **cheap(algo))
    model.learn(60)
    single = gym.make(env_id).observation_space.shape[0]
    assert model.observation_space.shape == (3 * single,)
    actions, _ = model.predict(venv.reset())
    assert actions.shape[0] == 2 and all(venv.action_space.contains(a) for a in actions)


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
@pytest.mark.parametrize("channel_first", [True, False])
def test_frame_stacking_of_images_channel_first_or_last(algo, channel_first):
    env = FakeImageEnv(screen_height=36, screen_width=36, n_channels=1, discrete=algo is SoftDQN,
                       channel_first=channel_first)
    venv = VecFrameStack(DummyVecEnv([lambda: env]), n_stack=2)
    model = algo("CnnPolicy", venv, policy_kwargs=dict(net_arch=[16]), seed=0, **cheap(algo))
    assert isinstance(model.get_env(), VecTransposeImage) != channel_first  # SB3 transposes channel-last images
    assert model.observation_space.shape == (2, 36, 36)  # the policy sees channel-first, two frames stacked
    model.learn(40)
    actions, _ = model.predict(venv.reset())
    assert venv.action_space.contains(actions[0])


class DropoutExtractor(BaseFeaturesExtractor):
    """Flatten, then dropout: a module whose output depends on the training mode."""

    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, features_dim=int(np.prod(observation_space.shape)))
        self.drop = nn.Dropout(p=0.5)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.drop(obs.flatten(1))


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_set_training_mode_switches_the_online_networks_and_predict_runs_in_eval_mode(algo):
    env_id = "Pendulum-v1" if algo is SoftQ else "CartPole-v1"
    model = algo("MlpPolicy", env_id, policy_kwargs=dict(net_arch=[16], features_extractor_class=DropoutExtractor),
                 seed=0, **cheap(algo))
    model.learn(40)
    if algo is SoftQ:
        online, target = [model.critic, model.policy.proposal], model.critic_target
    else:
        online, target = [model.energy_net], model.energy_net_target
    modules = [m for net in online for m in net.modules()]
    obs = _batch(model.observation_space, 8)
    x = torch.as_tensor(obs)

    model.policy.set_training_mode(True)
    assert model.policy.training and all(m.training for m in modules)
    assert not any(m.training for m in target.modules())  # the target network stays in eval mode
    extractor = online[0].features_extractor
    assert not torch.equal(extractor(x), extractor(x))  # dropout is on

    first = model.predict(obs, deterministic=True)[0]  # predict switches to eval mode, as SB3's policies do
    assert not model.policy.training and not any(m.training for m in modules)
    torch.testing.assert_close(extractor(x), extractor(x), rtol=0, atol=0)  # dropout is off
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], first)


class _SequenceObservations(gym.Env):
    observation_space = spaces.Sequence(spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32))

    def __init__(self, action_space: spaces.Space) -> None:
        self.action_space = action_space

    def reset(self, *, seed=None, options=None):
        return (np.zeros(2, dtype=np.float32),), {}

    def step(self, action):
        return (np.zeros(2, dtype=np.float32),), 0.0, True, False, {}


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_an_unsupported_observation_space_is_refused_naming_it(algo):
    actions = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32) if algo is SoftQ else spaces.Discrete(2)
    with pytest.raises(ValueError, match=r"observation_space Sequence\(.*\(Sequence\); expected one of Box"):
        algo("MlpPolicy", _SequenceObservations(actions))
    nested = spaces.Dict({"a": spaces.Box(-1, 1, (2,)), "b": spaces.Tuple([spaces.Discrete(2)])})
    env = _SequenceObservations(actions)
    env.observation_space = nested
    with pytest.raises(ValueError, match=r"observation_space\['b'\] = Tuple"):
        algo("MultiInputPolicy", env)


class _GoalKeysWithoutReward(gym.Env):
    """Dict observations with the goal keys, but no compute_reward: HER cannot relabel."""

    observation_space = spaces.Dict({k: spaces.Box(-1, 1, (2,), np.float32)
                                     for k in ("observation", "achieved_goal", "desired_goal")})

    def __init__(self, action_space: spaces.Space) -> None:
        self.action_space = action_space

    def reset(self, *, seed=None, options=None):
        return self.observation_space.sample(), {}

    def step(self, action):
        return self.observation_space.sample(), 0.0, True, False, {}


@pytest.mark.parametrize("algo", [SoftQ, SoftDQN])
def test_her_without_a_goal_conditioned_env_is_refused_naming_what_is_missing(algo):
    her = dict(replay_buffer_class=HerReplayBuffer)
    box_obs = "Pendulum-v1" if algo is SoftQ else "CartPole-v1"
    with pytest.raises(ValueError, match=r"HerReplayBuffer needs a goal-conditioned env: Dict observations"):
        algo("MultiInputPolicy", box_obs, **her)
    with pytest.raises(ValueError, match=r"keys \['img', 'vec'\]"):
        algo("MultiInputPolicy", SimpleMultiObsEnv(discrete_actions=algo is SoftDQN), **her)
    actions = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32) if algo is SoftQ else spaces.Discrete(2)
    with pytest.raises(ValueError, match=r"compute_reward\(achieved_goal, desired_goal, info\) method"):
        algo("MultiInputPolicy", _GoalKeysWithoutReward(actions), **her)
