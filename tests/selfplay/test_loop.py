"""The training loop in-process: resuming, counters, configuration checks, damaged run files."""

from __future__ import annotations

import dataclasses

import pytest

from checkpoints import list_checkpoints, load_checkpoint
from selfplay import config as cfg
from selfplay.loop import RunError, prepare_run, train
from tests.selfplay.util import metrics, shard_games, tiny_overrides, train_state


def _config(*extra: str) -> cfg.TrainConfig:
    return cfg.merge(cfg.preset("tictactoe"), tiny_overrides(*extra))


def _budget(iterations: int) -> dict:
    return {"run": {"max_iterations": str(iterations)}}


def test_a_run_and_its_resumption_count_on(tmp_path):
    run = tmp_path / "run"
    first = train(_config("run.max_iterations=2", "run.checkpoint_every=1"), run, progress=False)
    assert (first.iterations, first.interrupted) == (2, False)
    state = train_state(run)
    counters = state["extra"]["counters"]
    assert counters == {"iteration": 2, "games": first.games, "positions": first.positions,
                        "evaluations": counters["evaluations"]}
    # Every self-play move (TINY: 2 iterations x 9 moves x 8 games) evaluates its root and
    # at most one leaf per simulation (4): the count lies between, and metrics.csv has it.
    moves = 2 * 9 * 8
    assert moves <= counters["evaluations"] <= 5 * moves
    assert int(metrics(run)[-1]["evaluations"]) == counters["evaluations"]
    assert state["step"] == first.learner_step > 0
    second = train(None, run, _budget(4), progress=False)
    assert second.iterations == 2
    assert second.learner_step > first.learner_step and second.games > first.games
    assert train_state(run)["extra"]["counters"]["iteration"] == 4
    assert [int(row["iteration"]) for row in metrics(run)] == [1, 2, 3, 4]
    assert sum(shard_games(run)) == second.games
    meta = load_checkpoint(second.checkpoint).meta
    assert meta["step"] == second.learner_step and meta["games"] == second.games
    assert meta["parent"] is not None and meta["extra"]["iteration"] == 4
    # The budget is spent: nothing more happens, nothing is rewritten.
    again = train(None, run, _budget(4), progress=False)
    assert again.iterations == 0 and again.learner_step == second.learner_step


def test_iterations_without_training_are_saved_too(tmp_path):
    # Below min_positions the learner step stays 0, but iterations, games and
    # shards advance; a resumed session must save them (it compared steps).
    run = tmp_path / "run"
    config = _config("replay.min_positions=1000000", "run.checkpoint_every=10",
                     "run.max_iterations=2")
    train(config, run, progress=False)
    summary = train(None, run, _budget(4), progress=False)
    counters = train_state(run)["extra"]["counters"]
    assert summary.learner_step == 0
    assert counters["iteration"] == 4
    assert counters["games"] == summary.games == sum(shard_games(run))
    assert train(None, run, _budget(4), progress=False).iterations == 0


def test_training_can_start_with_an_empty_window(tmp_path):
    # min_positions=0 and no game finished in the first iteration: sampling an
    # empty window crashed the run.
    run = tmp_path / "run"
    summary = train(_config("replay.min_positions=0", "selfplay.moves_per_iteration=2",
                            "run.max_iterations=4"), run, progress=False)
    rows = metrics(run)
    assert rows[0]["games"] == "0" and rows[0]["learner_step"] == "0"
    assert summary.learner_step > 0 and summary.games > 0


def test_games_written_after_the_last_train_state_are_counted(tmp_path):
    # Simulates a kill after an iteration's shard (and checkpoint) but before
    # its train state: those games are on disk and in the window, so they count.
    run = tmp_path / "run"
    train(_config("run.max_iterations=2", "run.checkpoint_every=1"), run, progress=False)
    old_state = (run / "train_state.safetensors").read_bytes()
    train(None, run, _budget(3), progress=False)
    (run / "train_state.safetensors").write_bytes(old_state)
    summary = train(None, run, _budget(4), progress=False)
    assert summary.iterations == 2  # iterations 3 and 4 again
    games = shard_games(run)
    assert len(games) == 5 and summary.games == sum(games)  # 1, 2, 3 (orphan), 3, 4
    assert train_state(run)["extra"]["counters"]["games"] == sum(games)
    assert load_checkpoint(summary.checkpoint).meta["games"] == sum(games)


def test_resume_accepts_the_saved_settings_and_refuses_changes(tmp_path):
    run = tmp_path / "run"
    config = _config("run.seed=5")
    prepare_run(run, config)
    saved = (run / "config.toml").read_bytes()
    # The command that started the run resumes it: same settings, new budget.
    same = prepare_run(run, config, tiny_overrides("run.max_iterations=9", "run.seed=8",
                                                   "run.max_minutes=0.5"))
    assert same == dataclasses.replace(
        config, run=dataclasses.replace(config.run, max_iterations=9, max_minutes=0.5))
    assert same.run.seed == 5  # the seed stays the run's
    with pytest.raises(RunError) as info:
        prepare_run(run, config, tiny_overrides("search.num_simulations=8"))
    assert "only [run] and [arena] settings can change" in str(info.value)
    assert "search.num_simulations 4 -> 8" in str(info.value)
    with pytest.raises(cfg.ConfigError, match="did you mean search.num_simulations"):
        prepare_run(run, None, {"search": {"num_simulation": "4"}})
    with pytest.raises(RunError, match="holds a tictactoe run"):
        prepare_run(run, cfg.preset("connect4"))
    with pytest.raises(RunError, match="holds a tictactoe run"):
        prepare_run(run, None, {"game": "connect4"})
    assert (run / "config.toml").read_bytes() == saved


def test_a_directory_that_is_not_a_run_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="not a Tabula run directory"):
        prepare_run(tmp_path, _config())
    with pytest.raises(RunError, match="give --game"):
        prepare_run(tmp_path / "new", None)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.fixture
def small_run(tmp_path):
    run = tmp_path / "run"
    train(_config("run.max_iterations=2", "run.checkpoint_every=1"), run, progress=False)
    return run


def test_a_tampered_latest_checkpoint_is_a_run_error(small_run):
    latest = list_checkpoints(small_run / "checkpoints")[-1]
    data = bytearray(latest.read_bytes())
    data[-1] ^= 0xFF
    latest.write_bytes(bytes(data))
    with pytest.raises(RunError) as info:
        train(None, small_run, _budget(3), progress=False)
    message = str(info.value)
    assert "cannot resume" in message and latest.name in message and "hash mismatch" in message
    assert "use an earlier checkpoint" not in message


def test_a_missing_latest_checkpoint_is_a_run_error(small_run):
    list_checkpoints(small_run / "checkpoints")[-1].unlink()
    with pytest.raises(RunError, match="cannot resume .*not found"):
        train(None, small_run, _budget(3), progress=False)


@pytest.mark.parametrize("damage", [lambda b: b[:100], lambda b: b"\0" * 8 + b[8:],
                                    lambda b: b"junk"])
def test_a_damaged_train_state_is_a_run_error(small_run, damage):
    path = small_run / "train_state.safetensors"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(RunError, match="train_state.safetensors is damaged"):
        train(None, small_run, _budget(3), progress=False)


def test_cuda_without_cuda_is_a_run_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(RunError, match="no CUDA device"):
        train(_config("run.device=cuda", "run.max_iterations=1"), tmp_path / "r",
              progress=False)


def test_the_evaluation_cache_plays_the_same_games_with_fewer_network_evaluations(tmp_path):
    # One iteration from the seeded initial weights: the cache is exact, so the
    # games are the same, and the run counts only the evaluations the network made.
    plain = train(_config("run.max_iterations=1"), tmp_path / "plain", progress=False)
    cached = train(_config("run.max_iterations=1", "selfplay.eval_cache=10000"),
                   tmp_path / "cached", progress=False)
    assert (cached.games, cached.positions) == (plain.games, plain.positions)
    a, b = metrics(tmp_path / "plain")[-1], metrics(tmp_path / "cached")[-1]
    requested, network = int(a["evaluations"]), int(b["evaluations"])
    assert network < requested
    hit_rate = float(b["selfplay/cache_hit_rate"])
    assert hit_rate == pytest.approx(1 - network / requested, abs=1e-4)
    assert a["selfplay/cache_hit_rate"] in ("0", "0.0")
    assert b["selfplay/backend"] == "torch"


def test_a_negative_cache_size_is_refused():
    with pytest.raises(ValueError, match="eval_cache"):
        _config("selfplay.eval_cache=-1")
