"""MuZero's selfplay side: n-step targets, unrolled samples, priorities, shards, reanalyze, runs.

Expected targets are computed by hand from the definition
z_t = sum_{j<n} d^j r_{t+j} + d^n v_{t+n} (module docstring of selfplay/muzero_replay.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from selfplay.muzero_replay import (Segment, SegmentReplay, read_segments, value_targets,
                                    write_segments)
from selfplay.records import ReplayError
from tests.extras import need


def _segment(rewards, values, done, length=None, num_actions=3, obs=None, actions=None,
             truncated=False):
    t = len(rewards)
    policies = np.tile(np.arange(1, num_actions + 1, dtype=np.float32), (t, 1))
    policies /= policies.sum(axis=1, keepdims=True)
    return Segment(
        obs=obs if obs is not None else np.arange(t, dtype=np.float32).reshape(t, 1, 1, 1),
        actions=np.asarray(actions if actions is not None else [i % num_actions for i in range(t)],
                           np.int32),
        rewards=np.asarray(rewards, np.float32), policies=policies,
        root_values=np.asarray(values, np.float32),
        masks=np.ones((t, num_actions), bool), to_play=np.zeros(t, np.int8),
        length=length or t, done=done, truncated=truncated)


def test_n_step_targets_of_a_finished_episode():
    seg = _segment([1.0, 0.0, 2.0], [10.0, 20.0, 30.0], done=True)
    # z0 = 1 + 0.5*0 + 0.25*v2 = 8.5; z1 = 0 + 0.5*2 (episode over: no bootstrap); z2 = 2.
    np.testing.assert_allclose(value_targets(seg, td_steps=2, discount=0.5), [8.5, 1.0, 2.0])


def test_n_step_targets_of_a_running_episode_bootstrap_from_the_last_value():
    seg = _segment([1.0, 0.0, 2.0], [10.0, 20.0, 30.0], done=False)
    # z1: the window passes the segment's end, so it stops at the last position:
    # r1 + 0.5 * v2 = 15; z2 = v2 = 30.
    np.testing.assert_allclose(value_targets(seg, td_steps=2, discount=0.5), [8.5, 15.0, 30.0])


def test_an_episode_cut_by_the_time_limit_bootstraps_like_a_running_one():
    # Same numbers as the running episode above: the cut is not a terminal state, so
    # z1 = r1 + 0.5 * v2 = 15 and z2 = v2 = 30 (a real end would give 1.0 and 2.0).
    seg = _segment([1.0, 0.0, 2.0], [10.0, 20.0, 30.0], done=True, truncated=True)
    np.testing.assert_allclose(value_targets(seg, td_steps=2, discount=0.5), [8.5, 15.0, 30.0])
    replay = SegmentReplay(100, (1, 1, 1), 3, frames=False, unroll_steps=2, td_steps=2,
                           discount=0.5)
    replay.add(seg)
    sample = replay.sample(64, np.random.default_rng(0))
    last = sample["index"] == 2  # unrolls from the last position run past the cut
    assert last.any()
    # Past the cut nothing is known: no absorbing value-0 or reward-0 targets there.
    assert np.all(sample["value_mask"][last] == [1, 0, 0])
    # reward into the last position, and of its own action (the last one seen), then none.
    assert np.all(sample["reward_mask"][last] == [1, 1, 0])
    assert replay.games == 1  # it still counts as a finished episode


def test_a_real_end_is_absorbing():
    seg = _segment([1.0, 0.0, 2.0], [10.0, 20.0, 30.0], done=True)
    replay = SegmentReplay(100, (1, 1, 1), 3, frames=False, unroll_steps=2, td_steps=2,
                           discount=0.5)
    replay.add(seg)
    sample = replay.sample(64, np.random.default_rng(0))
    last = sample["index"] == 2
    assert np.all(sample["value_mask"][last] == [1, 1, 1])
    assert np.all(sample["value"][last][:, 1:] == 0)


def test_two_player_targets_are_the_outcome_for_each_mover():
    # Five moves, the last one wins for its mover: movers alternate, so the
    # positions of that player get +1 and the others -1.
    seg = _segment([0, 0, 0, 0, 1.0], [0.3] * 5, done=True)
    np.testing.assert_allclose(value_targets(seg, td_steps=9, discount=-1.0),
                               [1, -1, 1, -1, 1])
    # A draw: every target 0 whatever the search said.
    draw = _segment([0.0] * 9, [0.7] * 9, done=True)
    np.testing.assert_allclose(value_targets(draw, td_steps=9, discount=-1.0), np.zeros(9))


def test_unrolled_sample_past_the_end_of_a_game():
    replay = SegmentReplay(100, (1, 1, 1), 3, frames=False, unroll_steps=2, td_steps=1,
                           discount=1.0)
    replay.add(_segment([1.0, 0.0, 5.0], [0.0, 0.0, 0.0], done=True, actions=[2, 1, 0]))

    class Last:  # draws position 2 then random actions
        def integers(self, lo, hi, size=None):
            return np.full(size, 2) if hi == 3 and size == 1 and lo == 0 else \
                np.random.default_rng(0).integers(lo, hi, size=size)
    batch = replay.sample(1, Last())
    assert batch["index"].tolist() == [2]
    # Value: z2 = r2 = 5, then the absorbing state (0, counted).
    np.testing.assert_allclose(batch["value"][0], [5.0, 0.0, 0.0])
    np.testing.assert_allclose(batch["value_mask"][0], [1, 1, 1])
    # Reward into step 1 is r2 = 5; into step 2 the absorbing 0.
    np.testing.assert_allclose(batch["reward"][0, 1:], [5.0, 0.0])
    np.testing.assert_allclose(batch["reward_mask"][0, 1:], [1, 1])
    # Policy only where a search happened; the first action is the one played.
    np.testing.assert_allclose(batch["policy_mask"][0], [1, 0, 0])
    assert batch["actions"][0, 0] == 0
    assert 0 <= batch["actions"][0, 1] < 3
    assert batch["obs"][0].item() == 2.0


def test_running_segment_masks_what_it_cannot_know():
    replay = SegmentReplay(100, (1, 1, 1), 3, frames=False, unroll_steps=2, td_steps=1,
                           discount=1.0)
    replay.add(_segment([1.0, 2.0], [0.0, 4.0], done=False, length=1))
    batch = replay.sample(4, np.random.default_rng(0))
    assert set(batch["index"].tolist()) == {0}  # only the first `length` positions
    np.testing.assert_allclose(batch["value_mask"][0], [1, 1, 0])
    np.testing.assert_allclose(batch["reward_mask"][0], [0, 1, 1])
    np.testing.assert_allclose(batch["reward"][0], [0, 1.0, 2.0])


def test_frames_are_stacked_from_single_frames():
    stack, t = 4, 5
    frames = np.zeros((stack - 1 + t, 2, 2), np.uint8)
    for i in range(stack - 1 + t):
        frames[i] = i * 10
    seg = _segment([0.0] * t, [0.0] * t, done=True, obs=frames)
    replay = SegmentReplay(100, (stack, 2, 2), 3, frames=True, unroll_steps=1, td_steps=1,
                           discount=0.9)
    replay.add(seg)
    obs, _ = replay.positions(np.array([0, 4]))
    np.testing.assert_allclose(obs[0][:, 0, 0] * 255, [0, 10, 20, 30], atol=1e-3)
    np.testing.assert_allclose(obs[1][:, 0, 0] * 255, [40, 50, 60, 70], atol=1e-3)


def test_window_drops_the_oldest_segments():
    replay = SegmentReplay(10, (1, 1, 1), 3, frames=False, unroll_steps=1, td_steps=1,
                           discount=1.0)
    for i in range(5):
        replay.add(_segment([float(i)] * 4, [0.0] * 4, done=True))
    assert replay.size == 12  # three segments of 4: dropping one more would go below 10
    assert [s.rewards[0] for s in replay.segments] == [2.0, 3.0, 4.0]


def test_prioritized_sampling_follows_priorities_and_corrects_with_weights():
    replay = SegmentReplay(100, (1, 1, 1), 3, frames=False, unroll_steps=1, td_steps=1,
                           discount=1.0, prioritized=True, alpha=1.0, beta=1.0)
    replay.add(_segment([0.0] * 4, [0.0] * 4, done=True))
    replay.update_priorities(np.arange(4), np.array([0.0, 0.0, 0.0, 3.0]))
    batch = replay.sample(2000, np.random.default_rng(1))
    share = np.mean(batch["index"] == 3)
    expected = 3.001 / (3.001 + 3 * 0.001)
    assert share == pytest.approx(expected, abs=0.01)
    # Importance weights (N P)^-beta normalised by their max: the frequent one is smallest.
    w = batch["weight"][batch["index"] == 3][0]
    assert w == pytest.approx(0.001 / 3.001, rel=1e-3)


def test_refresh_replaces_search_targets_and_value_targets():
    replay = SegmentReplay(100, (1, 1, 1), 3, frames=False, unroll_steps=1, td_steps=1,
                           discount=0.5)
    replay.add(_segment([0.0, 0.0, 0.0], [1.0, 2.0, 3.0], done=True))
    new_policy = np.array([[1.0, 0.0, 0.0]], np.float32)
    replay.refresh(np.array([2]), new_policy, np.array([8.0], np.float32))
    assert replay.segments[0].policies[2].tolist() == [1.0, 0.0, 0.0]
    # z1 = r1 + 0.5 * v2 with the refreshed v2.
    assert replay._targets[0].value[1] == pytest.approx(4.0)


def test_shards_round_trip_and_damage_names_the_file(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3 + 6, 8, 8)).astype(np.uint8)
    seg = _segment(list(rng.normal(size=6)), list(rng.normal(size=6)), done=False, length=4,
                   obs=frames)
    path = tmp_path / "shard-00000000.msgpack"
    write_segments(path, "atari/Test", (4, 8, 8), 3, True, [seg])
    back = read_segments(path, "atari/Test", (4, 8, 8), 3, True)[0]
    np.testing.assert_array_equal(back.obs, frames)
    np.testing.assert_allclose(back.rewards, seg.rewards)
    assert (back.length, back.done) == (4, False)
    with pytest.raises(ReplayError, match="for game"):
        read_segments(path, "atari/Other", (4, 8, 8), 3, True)
    cut = _segment([0.0] * 6, [0.0] * 6, done=True, truncated=True, obs=frames)
    write_segments(path, "atari/Test", (4, 8, 8), 3, True, [cut, seg])
    back = read_segments(path, "atari/Test", (4, 8, 8), 3, True)
    assert [(s.done, s.truncated) for s in back] == [(True, True), (False, False)]
    data = bytearray(path.read_bytes())
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(ReplayError, match=str(path.name)):
        read_segments(path, "atari/Test", (4, 8, 8), 3, True)


def test_reanalyze_rewrites_policies_with_the_new_search():
    import torch

    from engine.muzero_net import MuZeroNet, MuZeroNetConfig
    from engine.muzero_search import MuZeroInference
    from engine.search import SearchConfig
    from selfplay.muzero_actor import reanalyze

    torch.manual_seed(0)
    net = MuZeroNet((1, 1, 1), 3, MuZeroNetConfig(blocks=1, channels=4, head_channels=2,
                                                  hidden=8, value_support=3, reward_support=3))
    replay = SegmentReplay(100, (1, 1, 1), 3, frames=False, unroll_steps=1, td_steps=2,
                           discount=0.9)
    seg = _segment([0.0] * 6, [5.0] * 6, done=True)
    seg.policies[:] = np.array([0.0, 0.0, 1.0])
    replay.add(seg)
    search = SearchConfig(num_simulations=6, root_mode="puct", discount=0.9)
    count = reanalyze(replay, MuZeroInference(net), search, 50, np.random.default_rng(0), None)
    assert count == 6  # capped at the window's size
    changed = ~np.all(replay.segments[0].policies == np.array([0.0, 0.0, 1.0]), axis=1)
    assert changed.any()
    # A fresh network predicts value 0 and reward 0: refreshed root values are 0.
    assert np.all(replay.segments[0].root_values[changed] == 0.0)


def test_reanalyze_refreshes_whole_segments_so_bootstrap_values_are_fresh_too():
    import torch

    from engine.muzero_net import MuZeroNet, MuZeroNetConfig
    from engine.muzero_search import MuZeroInference
    from engine.search import SearchConfig
    from selfplay.muzero_actor import reanalyze

    torch.manual_seed(0)
    net = MuZeroNet((1, 1, 1), 3, MuZeroNetConfig(blocks=1, channels=4, head_channels=2,
                                                  hidden=8, value_support=3, reward_support=3))
    replay = SegmentReplay(100, (1, 1, 1), 3, frames=False, unroll_steps=1, td_steps=2,
                           discount=0.9, prioritized=True)
    # Two running segments of 6 positions, 4 sampled; no rewards, every search value 5:
    # z_t = 0.9^2 * v_{t+2} = 4.05 (the last ones bootstrap from v_5: 0.9 * 5, 5).
    for _ in range(2):
        replay.add(_segment([0.0] * 6, [5.0] * 6, done=False, length=4))
    np.testing.assert_allclose(replay._targets[0].value[:6], [4.05, 4.05, 4.05, 4.05, 4.5, 5.0],
                               rtol=1e-6)
    search = SearchConfig(num_simulations=4, root_mode="puct", discount=0.9)
    searched = reanalyze(replay, MuZeroInference(net), search, 1, np.random.default_rng(0), None)
    assert searched == 6  # one whole segment, its overlap included
    fresh = [i for i, seg in enumerate(replay.segments) if np.all(seg.root_values == 0.0)]
    assert len(fresh) == 1  # a fresh network values every position 0
    (s,), other = fresh, 1 - fresh[0]
    # Every target of the refreshed segment bootstraps from a new value: all 0, where
    # re-searching position t alone would have left z_t = 0.9^2 * 5 from the stale v_{t+2}.
    np.testing.assert_allclose(replay._targets[s].value[:6], np.zeros(6), atol=1e-7)
    np.testing.assert_allclose(replay._priority[s], np.full(4, 1e-3), rtol=1e-6)
    # The other segment is untouched, and the sampler sees the new priorities.
    np.testing.assert_allclose(replay._targets[other].value[:4], [4.05] * 4, rtol=1e-6)
    np.testing.assert_allclose(replay._flat_priority[4 * s:4 * s + 4], np.full(4, 1e-3),
                               rtol=1e-6)
    np.testing.assert_allclose(replay._flat_priority[4 * other:4 * other + 4],
                               np.full(4, 0.95 + 1e-3), rtol=1e-6)


# ---------------------------------------------------------------------------
# Whole runs through the real training loop.

MZ_TINY = ["run.actors=0", "muzero_network.blocks=1", "muzero_network.channels=8",
           "muzero_network.head_channels=4", "muzero_network.hidden=16",
           "muzero_network.value_support=5", "muzero_network.reward_support=5",
           "search.num_simulations=4", "search.max_num_considered_actions=4",
           "selfplay.parallel_games=8", "replay.min_positions=10",
           "learner.batch_size=16", "learner.max_steps_per_iteration=3"]


def _train(game, tmp_path, extra=(), iterations=2, algo="muzero"):
    from selfplay import config as cfg
    from selfplay.loop import train

    budget = [f"run.max_iterations={iterations}", "run.max_minutes=0"]
    config = cfg.merge(cfg.preset(game, algo),
                       cfg.parse_overrides(MZ_TINY + list(extra) + budget))
    return train(config, tmp_path / "run", overrides=cfg.parse_overrides(budget),
                 progress=False)


def test_muzero_tictactoe_run_writes_a_muzero_checkpoint_and_resumes(tmp_path):
    from checkpoints import read_metadata
    from engine.loading import load_muzero_network

    summary = _train("tictactoe", tmp_path, ["selfplay.moves_per_iteration=9",
                                             "muzero.prioritized=true",
                                             "muzero.reanalyze_fraction=0.5"])
    assert summary.games > 0 and summary.learner_step > 0
    meta = read_metadata(summary.checkpoint)
    assert meta["algo"] == "muzero" and meta["game"] == "tictactoe"
    net, _ = load_muzero_network(summary.checkpoint)
    assert net.num_actions == 9
    import csv
    rows = list(csv.DictReader(open(tmp_path / "run" / "metrics.csv")))
    assert float(rows[-1]["loss/reward"]) >= 0 and int(rows[-1]["reanalyze/positions"]) > 0
    again = _train("tictactoe", tmp_path, iterations=3)
    assert again.iterations == 1 and again.learner_step > summary.learner_step


def test_muzero_atari_run_stores_segments_of_a_running_episode(tmp_path):
    need("ale_py")
    from selfplay.muzero_replay import read_segments

    summary = _train("atari/Pong", tmp_path, [
        "selfplay.parallel_games=2", "selfplay.moves_per_iteration=12",
        "muzero.segment_length=4", "muzero.unroll_steps=2", "muzero.td_steps=3",
        "replay.min_positions=4", "learner.batch_size=4"])
    assert summary.learner_step > 0
    shards = sorted((tmp_path / "run" / "replay").glob("shard-*.msgpack"))
    segments = [s for p in shards
                for s in read_segments(p, "atari/Pong", (4, 96, 96), 6, True)]
    # Pong episodes are long: every stored segment is a full running one, with
    # the overlap its targets need (unroll 2 + td 3 positions).
    assert segments and all(not s.done and s.length == 4 and s.num_positions == 9
                            for s in segments)


def test_alphazero_on_an_environment_is_refused(tmp_path):
    need("ale_py")
    from selfplay.loop import RunError

    with pytest.raises(RunError, match="--algo muzero"):
        _train("atari/Pong", tmp_path, algo="alphazero")


def test_checkpoints_of_each_algorithm_load_only_as_themselves(tmp_path):
    from checkpoints import CheckpointError
    from engine.loading import load_muzero_network, load_network
    from engine.player import MuZeroPlayer, Player
    from games import get_game

    mz = _train("tictactoe", tmp_path / "mz", ["selfplay.moves_per_iteration=9"], iterations=1)
    az = _train("tictactoe", tmp_path / "az", ["network.blocks=1", "network.channels=8",
                                               "selfplay.moves_per_iteration=9"],
                iterations=1, algo="alphazero")
    with pytest.raises(CheckpointError, match="muzero checkpoint"):
        load_network(mz.checkpoint)
    with pytest.raises(CheckpointError, match="not a MuZero one"):
        load_muzero_network(az.checkpoint)
    # Front-ends load through Player, which takes either: MuZero plays legal moves
    # from any position with its learned model.
    player = Player.from_checkpoint(mz.checkpoint)
    assert isinstance(player, MuZeroPlayer)
    state = get_game("tictactoe").new_initial_state()
    for move in (4, 0):
        state.apply(move)
    analysis = player.analyze([state])[0]
    assert state.legal_mask()[analysis.action]
    assert analysis.visits[[0, 4]].sum() == 0  # occupied squares are never searched
    assert not isinstance(Player.from_checkpoint(az.checkpoint), MuZeroPlayer)


def test_cli_refuses_to_switch_algorithm_on_a_run_and_alphazero_on_atari(tmp_path):
    import subprocess
    import sys

    def tabula(*args):
        return subprocess.run([sys.executable, "-m", "tabula", *args], capture_output=True,
                              text=True, timeout=300, cwd=tmp_path)

    sets = [x for item in MZ_TINY + ["selfplay.moves_per_iteration=9"] for x in ("--set", item)]
    done = tabula("train", "--game", "tictactoe", "--algo", "muzero", "--run", "mz",
                  "--iterations", "1", "--no-progress", *sets)
    assert done.returncode == 0, done.stderr
    config = (tmp_path / "mz" / "config.toml").read_text()
    assert 'algo = "muzero"' in config
    for args in (["--algo", "alphazero", "--run", "mz"],
                 ["--game", "atari/Pong", "--algo", "alphazero", "--run", "pong"]):
        bad = tabula("train", "--iterations", "2", "--no-progress", *args)
        assert bad.returncode == 2
        lines = bad.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("tabula: error:"), bad.stderr
        assert "alphazero" in lines[0].lower()
    assert (tmp_path / "mz" / "config.toml").read_text() == config
    assert not (tmp_path / "pong").exists()


def test_muzero_cartpole_run_stores_vector_observations_and_plays(tmp_path):
    """gym/CartPole-v1 through the real loop, then `tabula play` with its checkpoint."""
    import json
    import os
    import subprocess
    import sys

    from checkpoints import read_metadata
    from tests.conftest import REPO

    need("gymnasium")
    summary = _train("gym/CartPole-v1", tmp_path, [
        "selfplay.parallel_games=4", "selfplay.moves_per_iteration=40",
        "muzero.segment_length=8", "muzero.unroll_steps=3", "muzero.td_steps=5",
        "replay.min_positions=8", "learner.batch_size=8"])
    assert summary.learner_step > 0 and summary.games > 0
    assert read_metadata(summary.checkpoint)["game"] == "gym/CartPole-v1"
    shards = sorted((tmp_path / "run" / "replay").glob("shard-*.msgpack"))
    segments = [s for p in shards
                for s in read_segments(p, "gym/CartPole-v1", (4, 1, 1), 2, False)]
    # Float observations stored whole, one per position (no frame stack); CartPole's
    # +1 per step unchanged; early episodes topple within 40 moves and end for real.
    assert segments and all(s.obs.shape == (s.num_positions, 4, 1, 1) for s in segments)
    assert all(np.all(s.rewards == 1.0) for s in segments)
    assert any(s.done and not s.truncated and s.episode_return == s.num_positions
               for s in segments)

    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def play(*args):
        return subprocess.run([sys.executable, "-m", "tabula", "play", "--game",
                               "gym/CartPole-v1", "--checkpoint", str(summary.checkpoint),
                               "--no-progress", *args], capture_output=True, text=True,
                              timeout=300, cwd=tmp_path, env=env)

    done = play("--episodes", "2", "--json", "out.json")
    assert done.returncode == 0, done.stderr
    doc = json.loads((tmp_path / "out.json").read_text())
    returns = [e["return"] for e in doc["episodes"]]
    assert doc["game"] == "gym/CartPole-v1" and len(returns) == 2
    assert all(1 <= e["steps"] <= 500 and e["return"] == e["steps"] for e in doc["episodes"])
    assert doc["mean"] == pytest.approx(np.mean(returns)) and doc["ci95"] is not None
    assert "gym/CartPole-v1: mean return" in done.stdout and "(95% CI) over 2 episodes" in \
        done.stdout
    assert not list(tmp_path.glob("*.gif"))  # no screen, no GIF
    # `tabula bench learning` measures the same greedy episodes (seeds 0 and 1) for its
    # curve, with the normal interval `play` reports.
    curve = subprocess.run([sys.executable, "-m", "tabula", "bench", "learning", "--run",
                            str(tmp_path / "run"), "--every", "100", "--games", "2"],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert curve.returncode == 0, curve.stderr
    import csv
    with open(tmp_path / "run" / "learning.csv", newline="") as f:
        last = list(csv.DictReader(f))[-1]
    assert last["checkpoint"] == summary.checkpoint.name and int(last["return_n"]) == 2
    assert float(last["return"]) == pytest.approx(doc["mean"])
    assert float(last["return_high"]) - float(last["return"]) == pytest.approx(doc["ci95"])
    bad = play("--gif", "x.gif")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "tabula: error: --gif: gym/CartPole-v1 has no screen to record"]


def test_muzero_follows_the_learning_rate_schedule(tmp_path):
    """learner.lr_schedule=cosine lowers MuZero's rate over the budget, as AlphaZero's."""
    import csv

    from selfplay import config as cfg

    _train("tictactoe", tmp_path, ["selfplay.moves_per_iteration=9", "learner.lr_schedule=cosine",
                                   "learner.lr_final=0.1"], iterations=4)
    with open(tmp_path / "run" / "metrics.csv", newline="") as f:
        rates = [float(r["learner/lr"]) for r in csv.DictReader(f) if r["learner/lr"]]
    base = cfg.preset("tictactoe", "muzero").learner.learning_rate
    # Iteration i starts at progress (i - 1) / 4: rates base, then down the half cosine.
    assert len(rates) == 4 and rates[0] == pytest.approx(base)
    assert rates == sorted(rates, reverse=True) and rates[-1] < base
    assert rates[-1] >= 0.1 * base
