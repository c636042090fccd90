"""The real `tabula` command through subprocesses (and in-process for the evaluations)."""

from __future__ import annotations

import io
import json

import pytest

from tabula import cli

QUERIES = [
    '{"id": 1, "moves": []}',
    'not json',
    '{"id": "win", "moves": [0, 6, 0, 6, 0, 6], "sims": 64}',
    '{"moves": [3]}',
    '{"id": "two", "moves": [1, 1, 2, 2, 3, 3], "sims": 64}',
    '',
    '{"id": "ill", "moves": [3, 3, 3, 3, 3, 3, 3]}',
    '{"id": "txt", "moves": ["4", 3, "5"], "sims": 16}',
    '{"id": "over", "moves": [0, 6, 0, 6, 0, 6, 0]}',
    '{"id": "key", "moves": [], "komi": 7.5}',
]


def assert_user_error(proc, *words):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tabula: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in lines[0]


def test_games_lists_registered_games(tabula):
    proc = tabula("games")
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines()[1:]]
    assert "tictactoe" in names and "connect4" in names
    assert proc.stdout.splitlines()[0].split() == [
        "name", "actions", "observation", "players", "symmetries"]
    assert "connect4   7        3x6x7        2        2" in proc.stdout


@pytest.mark.parametrize("command", [["play", "--game", "nope"],
                                     ["analyze", "--game", "tictactoo"]])
def test_unknown_game_is_a_one_line_error(tabula, command):
    assert_user_error(tabula(*command), "unknown game")


def test_tampered_checkpoint_is_refused(tiny_checkpoints, tmp_path, capsys):
    data = bytearray(tiny_checkpoints["tictactoe"].read_bytes())
    data[-1] ^= 0xFF  # the last byte belongs to a tensor
    bad = tmp_path / "tampered.safetensors"
    bad.write_bytes(bytes(data))
    assert cli.main(["play", "--checkpoint", str(bad)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("tabula: error: ") and "hash" in err[0]


def test_analyze_answers_every_query_in_order(tabula, tiny_checkpoints):
    proc = tabula("analyze", "--checkpoint", tiny_checkpoints["connect4"],
                  stdin="\n".join(QUERIES) + "\n")
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [a.get("id") for a in answers] == [1, None, "win", None, "two", "ill", "txt",
                                              "over", "key"]
    by_id = {a["id"]: a for a in answers if a.get("id") is not None}
    errors = {a.get("id") for a in answers if "error" in a}
    assert errors == {None, "ill", "over", "key"}
    assert "illegal move '4'" in by_id["ill"]["error"]
    assert "unknown key" in by_id["key"]["error"]
    for a in answers:
        if "error" not in a:
            assert {"id", "move", "action", "value", "visits", "prior", "q",
                    "to_play"} <= set(a)
            assert -1 <= a["value"] <= 1
    # Default sims come from the checkpoint's training settings (8).
    assert sum(by_id[1]["visits"].values()) == 8
    assert sum(by_id["win"]["visits"].values()) == 64
    assert sum(by_id["txt"]["visits"].values()) == 16
    assert by_id["txt"]["to_play"] == 1 and set(by_id["txt"]["visits"]) == set("1234567")
    # Three in a row with an open fourth: the side to move takes the win.
    assert by_id["win"]["move"] == "1" and by_id["win"]["action"] == 0
    assert by_id["win"]["q"]["1"] == 1.0
    assert by_id["two"]["move"] in ("1", "5")


def test_analyze_batch_reaches_the_search(tabula, tiny_checkpoints):
    """--batch N (default 16): a lone query is searched with interactive_leaves(N, 1 tree,
    sims) leaves per step, the same answer as that search in-process, within its sims."""
    from arena.protocols.analysis import AnalysisEngine
    from engine.player import Player

    path = tiny_checkpoints["connect4"]
    query = '{"id": 1, "moves": [3, 3, 2], "sims": 64}'
    expected = {}
    for leaves in (1, 4, 16):  # the checkpoint searches with Gumbel: 16 leaves from 32 sims
        player = Player.from_checkpoint(path).with_search(leaves_per_step=leaves)
        expected[leaves] = json.loads(AnalysisEngine(player.game, player, 8).answer([query])[0])
    assert expected[1] != expected[16]
    for args, leaves in (((), 16), (("--batch", "1"), 1), (("--batch", "4"), 4)):
        proc = tabula("analyze", "--checkpoint", path, *args, stdin=query + "\n")
        assert proc.returncode == 0, proc.stderr
        answer = json.loads(proc.stdout)
        assert sum(answer["visits"].values()) == 64
        assert answer == expected[leaves], (args, answer)


@pytest.mark.parametrize("command", ["play", "analyze", "gtp"])
def test_batch_option_default_and_bounds(command, capsys):
    from engine.interactive import INTERACTIVE_BATCH

    parser = cli.build_parser()
    assert parser.parse_args([command]).batch == INTERACTIVE_BATCH == 16
    assert parser.parse_args([command, "--batch", "1"]).batch == 1
    with pytest.raises(SystemExit):
        parser.parse_args([command, "--batch", "0"])
    assert "--batch: must be at least 1" in capsys.readouterr().err


def test_play_transcript(tabula, tiny_checkpoints):
    script = "help\nzz\na1\na1\nundo\nquit\n"
    proc = tabula("play", "--game", "tictactoe", "--checkpoint",
                  tiny_checkpoints["tictactoe"], stdin=script)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == "tictactoe: you play first; type a move, or 'help'."
    assert "  undo            take back your last move and the engine's reply" in out
    assert any(line.startswith("bad tic-tac-toe move 'zz'") for line in out)
    assert "you play a1" in out
    assert any(line.startswith("engine plays ") and "for the engine)" in line for line in out)
    assert any(line.startswith("tictactoe: illegal move 'a1'") for line in out)
    assert "took back 2 move(s)" in out
    assert out[-1] == "you quit; game abandoned"


def test_play_engine_first_ends_at_eof(tiny_checkpoints, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    rc = cli.main(["play", "--checkpoint", str(tiny_checkpoints["tictactoe"]),
                   "--engine-first", "--sims", "4"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[0] == "tictactoe: you play second; type a move, or 'help'."
    assert out[1].startswith("engine plays ")
    assert out[-1] == "input ended; game abandoned"


TINY_TRAIN = ["--set", "run.actors=0", "--set", "network.blocks=1", "--set", "network.channels=8",
              "--set", "network.value_hidden=8", "--set", "search.num_simulations=4",
              "--set", "search.max_num_considered_actions=4",
              "--set", "selfplay.parallel_games=8", "--set", "replay.min_positions=16",
              "--set", "learner.batch_size=16", "--set", "learner.max_steps_per_iteration=2"]


def test_train_then_resume(tabula, tmp_path, capsys):
    run = tmp_path / "run"
    proc = tabula("train", "--run", run, "--iterations", "1", "--no-progress", *TINY_TRAIN,
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("trained 1 iterations")
    assert "play against it: tabula play --game tictactoe --checkpoint " in proc.stdout
    # Resume (in-process, to save a start-up): the saved game and network are used.
    assert cli.main(["train", "--run", str(run), "--iterations", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("trained 1 iterations") and "learner step 4" in out
    assert cli.main(["train", "--run", str(run), "--set", "search.num_simulations=8"]) == 2
    assert "only [run] and [arena] settings can change" in capsys.readouterr().err
    assert cli.main(["train", "--run", str(run), "--game", "connect4"]) == 2
    assert "holds a tictactoe run" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--set", "search.sims=3"], "unknown config key search.sims"),
    (["--set", "search"], "must look like section.key=value"),
    (["--game", "connect4", "--set", "game=tictactoe"], "conflicting game names"),
    (["--game", "nope"], "unknown game 'nope'"),
])
def test_train_refuses_bad_settings(args, message, tmp_path, capsys):
    run = tmp_path / "r"
    assert cli.main(["train", "--run", str(run), *args]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("tabula: error: ") and message in err[0]
    assert not run.exists()


# In-process: the evaluations print a report and exit 0.

def test_eval_minimax_prints_a_verdict(tiny_checkpoints, capsys):
    rc = cli.main(["eval", "--checkpoint", str(tiny_checkpoints["tictactoe"]),
                   "--vs", "minimax", "--sims", "2"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out[-1].startswith(("PERFECT:", "NOT PERFECT:")) and "decisions checked" in out[-1]


def test_eval_solved_reports_bands(tiny_checkpoints, tmp_path, capsys):
    data = tmp_path / "two.jsonl"
    data.write_text(
        '{"moves": "6251", "score": 18, "best_moves": [3], '
        '"child_scores": [0, 2, 2, 18, 0, -2, -2], "depth": 4}\n'
        '{"moves": "4444", "score": 0, "best_moves": [3], '
        '"child_scores": [0, 0, 0, 0, 0, 0, 0], "depth": 4}\n')
    rc = cli.main(["eval", "--checkpoint", str(tiny_checkpoints["connect4"]), "--vs", "solved",
                   "--data", str(data), "--sims", "2"])
    out = capsys.readouterr().out
    assert rc == 0 and "2 solved positions" in out
    assert any(line.split()[:2] == ["all", "2"] for line in out.splitlines())


def test_eval_mcts_reports_a_score(tiny_checkpoints, capsys):
    rc = cli.main(["eval", "--checkpoint", str(tiny_checkpoints["tictactoe"]), "--vs", "mcts",
                   "--games", "2", "--mcts-sims", "10", "--sims", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "vs open_spiel MCTS (10 simulations" in out and "2 games" in out
    assert "95% CI" in out


def test_eval_wrong_game_for_baseline(tiny_checkpoints, capsys):
    rc = cli.main(["eval", "--checkpoint", str(tiny_checkpoints["connect4"]), "--vs",
                   "minimax"])
    assert rc == 2
    assert "--vs minimax needs tictactoe" in capsys.readouterr().err


def test_missing_shipped_model_says_how_to_get_one(monkeypatch, tmp_path, capsys):
    import arena.matches.players

    monkeypatch.setattr(arena.matches.players, "shipped_checkpoint",
                        lambda name, algo=None: tmp_path / f"{name}.safetensors")
    assert cli.main(["play", "--game", "tictactoe"]) == 2
    err = capsys.readouterr().err
    assert "tabula train --game tictactoe" in err and "--checkpoint" in err


def test_bench_of_a_missing_module_is_not_available(monkeypatch, capsys):
    monkeypatch.setitem(cli.BENCH_MODULES, "mcts", "engine.no_such_bench")
    assert cli.main(["bench", "mcts"]) == 2
    assert "not available" in capsys.readouterr().err


def test_train_says_which_backend_auto_measured(tabula, tmp_path):
    import csv

    from engine.backend_choice import candidates

    run = tmp_path / "run"
    proc = tabula("train", "--run", run, "--iterations", "1", "--no-progress", *TINY_TRAIN,
                  cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines()
             if line.startswith("tabula: inference backend ")]
    assert len(lines) == 1, proc.stderr
    chosen = lines[0].split()[3]
    assert chosen in candidates() and "at batch 8:" in lines[0]  # measured, or cached
    rows = list(csv.DictReader((run / "metrics.csv").read_text().splitlines()))
    assert rows[-1]["selfplay/backend"] == chosen


def test_eval_run_reports_each_checkpoint_and_the_first_perfect_one(tabula, tmp_path):
    run = tmp_path / "run"
    proc = tabula("train", "--run", run, "--iterations", "2", "--no-progress", *TINY_TRAIN,
                  "--set", "run.checkpoint_every=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = tabula("eval", "--run", run, "--vs", "minimax", "--sims", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert len(steps) >= 2  # the initial checkpoint and one per iteration
    # Each line ends in the minimax verdict, and the summary agrees with them.
    assert all(" PERFECT" in line for line in steps)
    perfect = [line for line in steps if "NOT PERFECT" not in line]
    if perfect:
        assert lines[-1].startswith("first perfect checkpoint: step ")
        assert lines[-1].split()[4] == perfect[0].split()[1]
    else:
        assert lines[-1] == "no checkpoint plays perfectly"


def test_shipped_muzero_models_play_without_a_path(tabula, tmp_path):
    """MuZero's tic-tac-toe and CartPole models ship with the package: `--algo muzero`
    picks the tic-tac-toe one beside AlphaZero's, CartPole's is the only one."""
    import json

    from arena.matches.players import shipped_checkpoint
    from checkpoints import read_metadata

    assert read_metadata(shipped_checkpoint("tictactoe", "muzero"))["algo"] == "muzero"
    assert read_metadata(shipped_checkpoint("tictactoe"))["algo"] == "alphazero"
    assert shipped_checkpoint("tictactoe", "alphazero") == shipped_checkpoint("tictactoe")
    assert read_metadata(shipped_checkpoint("gym/CartPole-v1", "muzero"))["game"] == \
        "gym/CartPole-v1"
    proc = tabula("eval", "--game", "tictactoe", "--algo", "muzero", "--vs", "minimax")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("tictactoe.muzero (tictactoe)"), proc.stdout
    verdict = proc.stdout.strip().splitlines()[-1]
    assert "decisions checked" in verdict
    proc = tabula("play", "--game", "gym/CartPole-v1", "--episodes", "2", "--no-progress",
                  "--json", tmp_path / "cp.json")
    assert proc.returncode == 0, proc.stderr
    episodes = json.loads((tmp_path / "cp.json").read_text())["episodes"]
    assert len(episodes) == 2 and all(e["return"] == e["steps"] > 0 for e in episodes)
    # Wrong requests: one line, exit 2.
    for args, reason in (
            (["eval", "--game", "connect4", "--algo", "muzero", "--vs", "solved"],
             "no muzero model is shipped for connect4"),
            (["play", "--game", "gym/CartPole-v1", "--algo", "alphazero"],
             "give --checkpoint PATH or --agent random (no alphazero model is shipped for "
             "gym/CartPole-v1)"),
            (["play", "--game", "tictactoe", "--algo", "muzero", "--checkpoint",
              str(shipped_checkpoint("tictactoe"))], "--algo chooses among the shipped models")):
        proc = tabula(*args)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and reason in lines[0], proc.stderr
