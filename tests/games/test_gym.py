"""gymnasium environments as games (games/gym.py): CartPole-v1 against gymnasium itself.

The env API is checked against a bare `gymnasium.make` stepped with the same seed
and actions (observations, rewards, the end), and the behaviour training relies on
(seeding, truncation at the time limit) against gymnasium's own flags.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.extras import need

gym = need("gymnasium")

from games import GameError, GameInfo, get_game  # noqa: E402
from games.gym import DISCOUNT, GymGame, family_note, gym_game  # noqa: E402


@pytest.fixture(scope="module")
def cartpole() -> GymGame:
    return get_game("gym/CartPole-v1")


def started(game: GymGame, seed: int = 0):
    env = game.new_env(seed)
    env.reset()
    return env


def run(env, actions) -> tuple[list[np.ndarray], list[float], list[bool]]:
    observations, rewards, dones = [], [], []
    for a in actions:
        r, done = env.step(a)
        observations.append(env.observation())
        rewards.append(r)
        dones.append(done)
        if done:
            break
    return observations, rewards, dones


# facts and shapes ------------------------------------------------------------

def test_info(cartpole):
    info = cartpole.info
    assert info == GameInfo(name="gym/CartPole-v1", num_actions=2, observation_shape=(4, 1, 1),
                            num_players=1, max_game_length=500, num_symmetries=1,
                            has_draws=False, discount=DISCOUNT, kind="environment")
    # Observations are stored whole (not stacked frames); there is no screen.
    assert info.frame_stack == 0 and not info.screen and DISCOUNT == 0.997
    assert get_game("gym/CartPole-v1") is cartpole
    acrobot = get_game("gym/Acrobot-v1").info
    assert (acrobot.num_actions, acrobot.observation_shape) == (3, (6, 1, 1))


def test_frame_stack_is_declared_only_by_environments_with_that_many_planes():
    GameInfo("e", 2, (4, 8, 8), 1, 10, kind="environment", frame_stack=4)
    for kind, shape, stack in (("board", (4, 8, 8), 4), ("environment", (3, 8, 8), 4),
                               ("environment", (4, 1, 1), -1)):
        with pytest.raises(ValueError, match="frame_stack"):
            GameInfo("e", 2, shape, 1, 10, kind=kind, frame_stack=stack)


def test_observations_rewards_and_end_are_gymnasiums(cartpole):
    env = started(cartpole, seed=5)
    bare = gym.make("CartPole-v1")
    first, _ = bare.reset(seed=5)
    obs = env.observation()
    assert obs.dtype == np.float32 and obs.shape == (4, 1, 1)
    np.testing.assert_array_equal(obs.ravel(), first)
    assert env.legal_mask().tolist() == [True, True]
    # Always pushing right topples the pole within a few dozen steps: terminated.
    observations, rewards, dones = run(env, [1] * 100)
    for ours in observations:
        theirs, reward, terminated, truncated, _ = bare.step(1)
        np.testing.assert_array_equal(ours.ravel(), theirs)
    assert terminated and not truncated
    assert rewards == [1.0] * len(rewards) and dones[-1] and not any(dones[:-1])
    assert env.episode_return == len(rewards) == env.episode_steps < 100
    assert not env.truncated
    with pytest.raises(GameError, match="episode is over"):
        env.step(0)
    env.close()


def test_bad_actions_are_refused(cartpole):
    env = cartpole.new_env(0)
    with pytest.raises(GameError, match="call reset"):
        env.step(0)
    env.reset()
    for bad in (-1, 2):
        with pytest.raises(GameError, match="out of range"):
            env.step(bad)
    with pytest.raises(GameError, match="no screen"):
        cartpole.new_env(0, render=True)


def test_time_limit_truncates_and_is_not_terminal():
    game = gym_game("CartPole-v1", max_episode_steps=7)
    assert game.info.max_game_length == 7
    env = started(game, seed=1)
    _, rewards, dones = run(env, [0, 1] * 10)  # alternating keeps the pole up
    assert len(rewards) == 7 and dones == [False] * 6 + [True]
    assert env.truncated and env.episode_steps == 7 and env.episode_return == 7.0
    env.reset()  # a new episode clears the flag and the counters
    assert not env.truncated and (env.episode_steps, env.episode_return) == (0, 0.0)
    with pytest.raises(GameError, match="max_episode_steps"):
        gym_game("CartPole-v1", max_episode_steps=0)


def test_same_seed_same_episodes_and_later_resets_go_on(cartpole):
    def episodes(seed):
        env = started(cartpole, seed)
        starts = [env.observation()]
        for _ in range(2):
            run(env, [1] * 100)
            env.reset()
            starts.append(env.observation())
        return np.stack(starts)

    a, b, c = episodes(3), episodes(3), episodes(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a[0], a[1])  # the second episode starts elsewhere


def test_rewards_are_not_transformed_and_symmetry_is_identity(cartpole):
    assert [cartpole.transform_reward(r) for r in (1.0, -1.0, 100.0, -0.3)] == [
        1.0, -1.0, 100.0, -0.3]
    obs, policy = np.zeros((2, 4, 1, 1), np.float32), np.full((2, 2), 0.5, np.float32)
    assert cartpole.apply_symmetry(0, obs, policy) == (obs, policy)
    with pytest.raises(GameError):
        cartpole.apply_symmetry(1, obs, policy)


# refusals --------------------------------------------------------------------

@pytest.mark.parametrize("env_id, message", [
    ("Pendulum-v1", r"gym/Pendulum-v1: the action space is Box\(.*\), not Discrete"),
    ("MountainCarContinuous-v0", "not Discrete"),
    ("FrozenLake-v1", r"the observation space is Discrete\(16\), not a 1-D Box"),
    ("Blackjack-v1", r"the observation space is Tuple\(.*not a 1-D Box"),
])
def test_unusable_spaces_are_refused_in_one_line(env_id, message):
    with pytest.raises(GameError, match=message) as err:
        get_game(f"gym/{env_id}")
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("name, closest", [
    ("gym/Cartpole-v1", "CartPole-v1"), ("gym/CartPole", "CartPole-v1"),
    ("gym/acrobot-v1", "Acrobot-v1"),
])
def test_unknown_ids_name_the_closest(name, closest):
    with pytest.raises(GameError, match="unknown gymnasium environment") as err:
        get_game(name)
    assert f"closest: {closest}" in str(err.value) and "\n" not in str(err.value)


def test_unknown_id_without_close_match_gives_examples():
    with pytest.raises(GameError, match=r"'zzzz'; e\.g\. CartPole-v1, Acrobot-v1"):
        get_game("gym/zzzz")


def test_a_missing_dependency_is_one_line():
    if importlib.util.find_spec("Box2D") is not None:
        pytest.skip("Box2D is installed here; LunarLander-v3 is tested below")
    with pytest.raises(GameError, match="gym/LunarLander-v3: Box2D is not installed") as err:
        get_game("gym/LunarLander-v3")
    assert "\n" not in str(err.value)
    assert "gym/LunarLander-v3 (needs Box2D)" in family_note()


def test_lunar_lander_where_box2d_installs():
    if importlib.util.find_spec("Box2D") is None:
        pytest.skip("Box2D is not installed (pip install swig 'gymnasium[box2d]'); "
                    "LunarLander-v3 is optional")
    info = get_game("gym/LunarLander-v3").info
    assert (info.num_actions, info.observation_shape, info.max_game_length) == (4, (8, 1, 1),
                                                                               1000)


def test_games_command_lists_the_family(tabula):
    proc = tabula("games")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("gym/")]
    assert len(lines) == 1 and "gym/<EnvId>:" in lines[0] and "gym/CartPole-v1" in lines[0]
