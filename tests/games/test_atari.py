"""Atari through gymnasium + ale-py, on the real Breakout and Pong ROMs.

The preprocessing is checked against a bare ALE environment stepped frame by
frame (max-pooling, resize, frame skip), and the behaviour that training relies
on (sticky actions, seeding, lives, truncation) against the emulator itself.
"""

from __future__ import annotations

import importlib
import sys

import cv2
import gymnasium as gym
import numpy as np
import pytest

from games import GameError, get_game
from games.atari import ATARI_DEFAULTS, INSTALL_HINT, AtariGame, atari_game, atari_names

BREAKOUT_ACTIONS = ["NOOP", "FIRE", "RIGHT", "LEFT"]


@pytest.fixture(scope="module")
def breakout() -> AtariGame:
    return atari_game("Breakout", noop_max=0)


@pytest.fixture(scope="module")
def pong() -> AtariGame:
    return atari_game("Pong")


def started(game: AtariGame, seed: int = 0, **kwargs):
    env = game.new_env(seed, **kwargs)
    env.reset()
    return env


def play(env, actions) -> list[np.ndarray]:
    """Observations after each action (the episode must not end)."""
    observations = []
    for a in actions:
        _, done = env.step(a)
        assert not done
        observations.append(env.observation())
    return observations


# facts and shapes ------------------------------------------------------------

def test_info_and_shapes(breakout, pong):
    info = breakout.info
    assert (info.name, info.num_actions) == ("atari/Breakout", 4)
    assert info.observation_shape == (4, 96, 96)
    assert (info.num_players, info.max_game_length, info.num_symmetries) == (1, 27_000, 1)
    assert (info.has_draws, info.discount) == (False, 0.997)
    assert breakout.info.kind == "environment" and breakout.action_names == BREAKOUT_ACTIONS
    # Stacked screens: the replay stores each frame once; play can record a GIF.
    assert info.frame_stack == 4 and info.screen
    assert breakout.settings == {**ATARI_DEFAULTS, "noop_max": 0}
    assert pong.info.num_actions == 6 and pong.settings == ATARI_DEFAULTS

    env = started(pong)
    env.step(2)
    obs, frame = env.observation(), env.frame()
    assert obs.shape == (4, 96, 96) and obs.dtype == np.float32
    assert 0.0 <= obs.min() and obs.max() <= 1.0 and obs.max() > 0.0
    assert frame.shape == (96, 96) and frame.dtype == np.uint8
    np.testing.assert_array_equal(obs[-1] * 255, frame)
    rgb = env.rgb()
    assert rgb.shape == (210, 160, 3) and rgb.dtype == np.uint8 and rgb.max() > 0
    mask = env.legal_mask()
    assert mask.dtype == bool and mask.shape == (6,) and mask.all()
    env.close()


def test_settings_change_the_shapes():
    game = atari_game("breakout", frame_size=64, stack=2, noop_max=0)
    assert game.info.name == "atari/Breakout" and game.info.observation_shape == (2, 64, 64)
    env = started(game, sticky_prob=0.0)
    env.step(1)
    assert env.observation().shape == (2, 64, 64) and env.frame().shape == (64, 64)
    env.close()


# frame skip, stacking, max-pooling -------------------------------------------

def test_frame_skip_counts_emulator_frames(breakout):
    env = started(breakout, sticky_prob=0.0)
    ale = env._ale
    assert env.episode_frames == ale.getEpisodeFrameNumber() == 0  # noop_max=0
    for n in range(1, 4):
        env.step(1)
        assert env.episode_frames == ale.getEpisodeFrameNumber() == 4 * n
        assert env.episode_steps == n
    env.close()


def test_noop_starts_take_1_to_noop_max_frames(pong):
    frames = []
    for seed in range(3):
        env = started(pong, seed)
        frames.append(env.episode_frames)
        env.close()
    assert all(1 <= f <= 30 for f in frames)
    assert len(set(frames)) > 1  # different seeds, different no-op starts


def test_stack_shifts_oldest_first(pong):
    env = started(pong, sticky_prob=0.0)
    first = env.observation()
    assert all(np.array_equal(first[0], plane) for plane in first[1:])
    previous = first
    for a in [2, 2, 3, 0, 2]:
        env.step(a)
        obs = env.observation()
        np.testing.assert_array_equal(obs[:-1], previous[1:])
        previous = obs
    assert not np.array_equal(previous[-1], first[-1])
    env.close()


def test_frame_is_resized_max_of_last_two_raw_frames(pong):
    """Our frame against a bare ALE env stepped one frame at a time, pooled by hand."""
    game = atari_game("Pong", noop_max=0)
    env = started(game, seed=7, sticky_prob=0.0)
    raw = gym.make("ALE/Pong-v5", frameskip=1, repeat_action_probability=0.0,
                   obs_type="grayscale", max_num_frames_per_episode=None)
    raw.reset(seed=7)
    ale = raw.unwrapped.ale
    actions = [0] * 12 + [2, 2, 3, 3, 2, 0, 3, 2] * 4  # the ball is in play after ~15 steps
    pooling_mattered = False
    for a in actions:
        screens = []
        for _ in range(4):
            raw.step(a)
            screens.append(ale.getScreenGrayscale().copy())
        env.step(a)
        pooled = cv2.resize(np.maximum(screens[-2], screens[-1]), (96, 96),
                            interpolation=cv2.INTER_AREA)
        np.testing.assert_array_equal(env.frame(), pooled)
        last_only = cv2.resize(screens[-1], (96, 96), interpolation=cv2.INTER_AREA)
        pooling_mattered |= not np.array_equal(pooled, last_only)
    assert pooling_mattered  # so the comparison above can tell pooling from no pooling
    raw.close()
    env.close()


# sticky actions and seeding -------------------------------------------------

def test_sticky_prob_one_repeats_the_first_action_forever(pong):
    """ALE's previous action at reset is NOOP, so with p=1 every action is NOOP."""
    actions = np.random.default_rng(0).integers(1, 6, size=40)
    noop = play(started(pong, 3, sticky_prob=1.0), [0] * 40)
    sticky = play(started(pong, 3, sticky_prob=1.0), actions)
    for a, b in zip(noop, sticky):
        np.testing.assert_array_equal(a, b)
    free = play(started(pong, 3, sticky_prob=0.0), actions)
    assert not all(np.array_equal(a, b) for a, b in zip(noop, free))


def test_same_seed_same_episodes_across_resets():
    """Sticky actions (0.25) and no-op starts replay exactly; later resets continue the RNG."""
    game = atari_game("Pong", max_episode_steps=30)
    actions = np.random.default_rng(1).integers(0, 6, size=30)

    def episodes(seed: int) -> list[tuple]:
        env = game.new_env(seed)
        runs = []
        for _ in range(3):
            env.reset()
            frames = env.episode_frames
            observations = [env.observation()]
            for a in actions:
                env.step(a)
                observations.append(env.observation())
            runs.append((frames, np.stack(observations)))
        env.close()
        return runs

    first, again, other = episodes(5), episodes(5), episodes(6)
    for (fa, oa), (fb, ob) in zip(first, again):
        assert fa == fb
        np.testing.assert_array_equal(oa, ob)
    assert any(fa != fo or not np.array_equal(oa, oo)
               for (fa, oa), (fo, oo) in zip(first, other))
    # the three episodes of one env are not copies of one another
    assert len({(f, o.tobytes()) for f, o in first}) > 1


# lives, game over, truncation ------------------------------------------------

def test_life_loss_in_breakout(breakout):
    env = started(breakout, sticky_prob=0.0)
    assert env.lives == 5
    env.step(1)  # FIRE launches the ball; the paddle then stays and misses it
    for _ in range(300):
        _, done = env.step(0)
        assert not done
        if env.lives != 5:
            break
        assert not env.life_lost
    assert env.lives == 4 and env.life_lost
    env.step(0)
    assert not env.life_lost and env.lives == 4
    env.close()


@pytest.mark.parametrize("fire", [True, False])
def test_fire_after_life_loss_serves_the_next_ball(fire):
    # FIRE once, then only NOOP: Breakout waits for FIRE before each new ball. With the
    # setting every ball is served and missed until the game is over; without it the
    # game stalls after the first lost ball.
    game = atari_game("Breakout", noop_max=0, fire_after_life_loss=fire)
    env = started(game, sticky_prob=0.0)
    env.step(game.action_names.index("FIRE"))
    done, steps = False, 0
    while not done and steps < 1500:
        _, done = env.step(0)
        steps += 1
    if fire:
        assert done and env.lives == 0 and not env.truncated
    else:
        assert not done and env.lives == 4
    env.close()


def test_fire_after_life_loss_must_be_a_bool():
    with pytest.raises(GameError, match="fire_after_life_loss"):
        atari_game("Breakout", fire_after_life_loss="yes")


def test_game_over_ends_the_episode(breakout):
    env = started(breakout, sticky_prob=0.0)
    total, done, losses = 0.0, False, 0
    while not done:
        assert env.episode_steps < 2000
        reward, done = env.step(1)
        total += reward
        losses += env.life_lost
    assert env.lives == 0 and losses == 5 and env.episode_return == total
    assert not env.truncated  # a real game over
    with pytest.raises(GameError, match="reset"):
        env.step(0)
    env.reset()
    assert (env.lives, env.episode_steps, env.episode_return) == (5, 0, 0.0)
    env.close()


def test_truncation_at_max_episode_steps():
    env = started(atari_game("Breakout", max_episode_steps=10))
    dones = [env.step(0)[1] for _ in range(10)]
    assert dones == [False] * 9 + [True] and env.episode_steps == 10 and env.lives == 5
    assert env.truncated  # cut by the time limit, not ended by the game
    env.reset()
    assert not env.truncated
    env.close()


def test_reward_transform_is_sign_clipping():
    t = AtariGame.transform_reward
    assert [t(r) for r in (-7.0, -0.5, 0.0, 0.25, 1.0, 400.0)] == [-1, -1, 0, 1, 1, 1]


def test_bad_action_is_refused(breakout):
    env = started(breakout, sticky_prob=0.0)
    with pytest.raises(GameError, match="out of range"):
        env.step(4)
    env.close()


# names, registry, errors ----------------------------------------------------

def test_names_match_gymnasium_ids():
    names = atari_names()
    assert {"Breakout", "Pong", "MontezumaRevenge", "MsPacman"} <= set(names)
    assert names == sorted(names) and len(names) > 50
    assert all(f"ALE/{n}-v5" in gym.registry for n in names)


def test_registry_family(breakout):
    game = get_game("atari/Breakout")
    assert isinstance(game, AtariGame) and game.info.name == "atari/Breakout"
    assert atari_game("montezuma_revenge").info.name == "atari/MontezumaRevenge"
    with pytest.raises(GameError, match="Breakout"):
        get_game("atari/Breakot")


def test_unknown_name_lists_the_closest():
    with pytest.raises(GameError) as e:
        atari_game("Breakot")
    message = str(e.value)
    assert message.startswith("unknown Atari game 'Breakot'; closest: Breakout")
    assert "\n" not in message and message.count(",") <= 2
    with pytest.raises(GameError, match="unknown Atari setting 'frame_skp'"):
        atari_game("Pong", frame_skp=2)
    with pytest.raises(GameError, match="sticky_prob"):
        atari_game("Pong", sticky_prob=1.5)
    with pytest.raises(GameError, match="stack must be an integer >= 1"):
        atari_game("Pong", stack="4")


@pytest.mark.parametrize("module", ["ale_py", "gymnasium"])
def test_missing_packages_are_one_clear_line(monkeypatch, capsys, module):
    import games

    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    monkeypatch.setattr(games, "atari", sys.modules["games.atari"])  # restored afterwards
    monkeypatch.delitem(sys.modules, "games.atari")
    fresh = importlib.import_module("games.atari")  # the module itself needs neither
    with pytest.raises(GameError) as e:
        fresh.atari_game("Breakout")
    assert str(e.value) == INSTALL_HINT == (
        "atari games need gymnasium and ale-py: pip install 'tabula[atari]'")
    assert fresh.atari_names() == []

    from tabula import cli

    assert cli._cmd_games(None) == 0
    assert f"atari/<name>: unavailable ({INSTALL_HINT})" in capsys.readouterr().out.splitlines()
