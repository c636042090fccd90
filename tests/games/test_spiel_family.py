"""spiel/<name>: open_spiel's games through the generic adapter (games/spiel_family.py).

The parametrized end-to-end test trains each game for two tiny iterations, then plays a
whole game through the text prompt's engine, typing open_spiel's move text for the person,
and checks that every move was legal and the game ended.
"""

from __future__ import annotations

import json

import numpy as np
import pyspiel
import pytest

from games import GameError, ObjectBatch, get_game
from games.spiel_family import REPEATED_MOVERS, spiel_names
from tests.conftest import make_checkpoint

HAND_WIRED = {"tic_tac_toe", "connect_four", "chess", "go"}

# Small parameters where open_spiel has them, so that tiny self-play finishes games.
TRAINED = [
    "antichess", "breakthrough(columns=6,rows=6)", "clobber(columns=4,rows=4)",
    "connect_four", "crazyhouse", "go(board_size=5)", "gomoku(connect=4,size=7)",
    "havannah(board_size=3)", "hex(board_size=5)", "hive",
    "lines_of_action(max_game_length=60)", "mnk(k=3,m=4,n=4)", "nim", "othello",
    "oware(num_houses_per_player=3,num_seeds_per_house=2)", "pentago",
    "quoridor(board_size=5,wall_count=2)", "tic_tac_toe", "twixt",
    "y(board_size=5)",
    # One player can move twice in a row (GameInfo.alternating False).
    "amazons(board_size=6)", "checkers", "dots_and_boxes", "mancala", "nine_mens_morris",
    "ultimate_tic_tac_toe",
]
# Moves per iteration so that every game finishes some games (random-ish games are long).
LONG = {"antichess": 100, "crazyhouse": 60, "hive": 60, "lines_of_action": 60, "oware": 60,
        "othello": 40, "amazons": 45, "checkers": 60, "mancala": 40, "nine_mens_morris": 110,
        "ultimate_tic_tac_toe": 45}


def _random_states(game, rng, plies: int, count: int):
    """`count` positions after up to `plies` random moves (states)."""
    states = []
    for _ in range(count):
        state = game.new_initial_state()
        for _ in range(int(rng.integers(0, plies + 1))):
            if state.is_terminal():
                break
            state.apply(int(rng.choice(np.flatnonzero(state.legal_mask()))))
        states.append(state)
    return states


def test_listing_has_15_games_beyond_the_hand_wired_ones(capsys):
    from tabula.cli import main

    names = spiel_names()
    assert len(set(names) - HAND_WIRED) >= 15
    assert set(REPEATED_MOVERS) <= set(names)
    assert main(["games"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"spiel/<name>: {len(names)} open_spiel games: {', '.join(names)};" in out


@pytest.mark.parametrize("text, reason", [
    ("kuhn_poker", "imperfect information"),
    ("backgammon", "chance events"),
    ("goofspiel", "simultaneous moves"),
    ("quoridor(players=3)", "3 players"),
    ("matrix_pd", "general-sum returns"),
])
def test_other_kinds_of_game_are_refused_saying_why(text, reason):
    with pytest.raises(GameError) as e:
        get_game(f"spiel/{text}")
    message = str(e.value)
    assert message.startswith(f"spiel/{text}: ") and reason in message
    assert "\n" not in message


def test_games_with_repeated_movers_declare_it():
    for short in REPEATED_MOVERS:
        assert not get_game(f"spiel/{short}").info.alternating, short
    assert get_game("spiel/hex").info.alternating and get_game("spiel/nim").info.alternating


@pytest.mark.parametrize("name", ["mancala", "dots_and_boxes", "nine_mens_morris"])
def test_the_game_check_passes_without_strict_alternation(name):
    from games import check_game

    check_game(get_game(f"spiel/{name}"))


def test_an_extra_turn_is_searched_as_the_same_players():
    """mancala: a move whose last seed lands in the mover's store gives another turn.

    From the start (4 seeds a pit), player 0's third pit (action 3: its 4 seeds go to
    pits 4-6 and the store) keeps the turn; the spiel batch says so, and the search's Q of that
    move is its child's value unchanged (+0.5 from a fixed evaluator), where a move
    that passes the turn gets -0.5."""
    from engine.search import SearchConfig, run_search

    game = get_game("spiel/mancala")
    root = game.new_initial_state()
    keep = root.clone()
    keep.apply(3)
    assert keep.to_play() == 0
    passes = root.clone()
    passes.apply(1)
    assert passes.to_play() == 1

    class Half:
        def evaluate(self, obs, mask):
            return np.zeros(mask.shape, np.float32), np.full(len(obs), 0.5, np.float32)

    info = game.info
    config = SearchConfig(num_simulations=6, root_mode="puct", dirichlet_fraction=0.0)

    def search(alternating):
        batch = game.new_search_batch([root], 7)
        return run_search(batch, Half(), config, info.num_actions, info.observation_shape,
                          alternating=alternating)

    # PUCT tries moves 1 to 5 once (Q -0.5 each, but +0.5 for action 3), then action 3
    # again, whose second node (player 0's move after the extra turn) passes the turn:
    # Q(3) = (0.5 - 0.5) / 2.
    result = search(info.alternating)
    assert result.visits[0, 1:7].tolist() == [1, 1, 2, 1, 1, 0]
    np.testing.assert_allclose(result.q[0, 1:6], [-0.5, -0.5, 0.0, -0.5, -0.5], atol=1e-6)
    assert result.action[0] == 3
    # With the fixed -1 the extra turn looked like any other move.
    wrong = search(True)
    np.testing.assert_allclose(wrong.q[0, 1:7], -0.5, atol=1e-6)
    assert wrong.action[0] == 1


@pytest.mark.parametrize("name", ["dots_and_boxes", "mancala"])
def test_spiel_batch_reports_the_movers_as_the_states_do(name):
    game = get_game(f"spiel/{name}")
    roots = [r for r in _random_states(game, np.random.default_rng(5), 8, 6)
             if not r.is_terminal()]
    n = len(roots)
    leaf_action = [int(np.random.default_rng(b).choice(np.flatnonzero(r.legal_mask())))
                   for b, r in enumerate(roots)]
    leaves = (np.arange(n), np.zeros(n), np.ones(n), leaf_action)
    for batch in (game.new_search_batch(roots, 4), ObjectBatch(roots, 4)):
        bufs = [np.zeros((n, *game.info.observation_shape), np.float32),
                np.zeros((n, game.info.num_actions), bool), np.zeros(n, np.float32),
                np.zeros(n, bool)]
        batch.expand(*leaves, *bufs)
        movers = np.zeros((2, n), np.int8)
        batch.players_to_move(np.arange(n), np.zeros(n, np.int32), movers[0])
        batch.players_to_move(np.arange(n), np.ones(n, np.int32), movers[1])
        for b, root in enumerate(roots):
            child = root.clone()
            child.apply(leaf_action[b])
            assert movers[0, b] == root.to_play()
            if not child.is_terminal():
                assert movers[1, b] == child.to_play()


@pytest.mark.parametrize("text, reason", [
    ("hex(board_size=x)", "Wrong type for parameter board_size"),
    ("hex(board_size=7", "Missing closing bracket"),
    ("hex(foo=1)", "Unknown parameter 'foo'"),
    ("nosuch", "Unknown game 'nosuch'; playable: amazons, antichess, "),
])
def test_a_malformed_string_gets_open_spiels_reason_on_one_line(text, reason):
    with pytest.raises(GameError) as e:
        get_game(f"spiel/{text}")
    assert reason in str(e.value) and "\n" not in str(e.value)


def test_the_cli_exits_2_with_one_line(tabula):
    result = tabula("play", "--game", "spiel/hex(board_size=7")
    assert result.returncode == 2
    assert result.stderr == ("tabula: error: spiel/hex(board_size=7: Missing closing "
                             "bracket ')'\n")


def test_names_are_open_spiels_normal_form():
    game = get_game("spiel/breakthrough(rows=6,columns=6)")
    assert game.info.name == "spiel/breakthrough(columns=6,rows=6)"
    assert get_game(game.info.name) is game
    assert get_game("spiel/hex()").info.name == "spiel/hex"


@pytest.mark.parametrize("name", spiel_names())
def test_states_follow_open_spiel(name):
    """Masks, move text, returns and the turn plane on random games of every game."""
    game = get_game(f"spiel/{name}")
    info, rng = game.info, np.random.default_rng(0)
    raw = pyspiel.load_game(name)
    assert info.num_actions == raw.num_distinct_actions() and info.num_symmetries == 1
    for state in _random_states(game, rng, 30, 4):
        spiel_state = state.spiel_state
        obs = state.observation()
        assert obs.dtype == np.float32 and obs.shape == info.observation_shape
        np.testing.assert_array_equal(obs[-1], float(state.to_play()))
        if state.is_terminal():
            assert not state.legal_mask().any()
            continue
        assert np.flatnonzero(state.legal_mask()).tolist() == spiel_state.legal_actions()
        action = spiel_state.legal_actions()[0]
        text = spiel_state.action_to_string(spiel_state.current_player(), action)
        assert state.action_to_text(action) == text
        parsed = state.text_to_action(text)  # the first legal move of that text
        assert parsed in spiel_state.legal_actions() and state.action_to_text(parsed) == text


@pytest.mark.parametrize("generic, hand_wired, order", [
    ("tic_tac_toe", "tictactoe", [2, 1, 0]), ("connect_four", "connect4", [0, 1, 2])])
def test_declared_colour_planes_give_the_movers_view(generic, hand_wired, order):
    """Cross-checked against the hand-wired adapters' (mover, opponent, empty) planes."""
    ours, theirs = get_game(f"spiel/{generic}"), get_game(hand_wired)
    for state in _random_states(ours, np.random.default_rng(1), 9, 20):
        other = theirs.state_from_actions(state.history())
        np.testing.assert_array_equal(state.observation()[order], other.observation())


def test_the_same_board_reads_differently_for_the_two_players():
    """Go 5x5: one black stone, with Black (after White passed) or White to move."""
    game = get_game("spiel/go(board_size=5)")
    pass_move = game.info.num_actions - 1
    black_to_move = game.state_from_actions([12, pass_move])
    white_to_move = game.state_from_actions([12])
    assert black_to_move.to_play() == 0 and white_to_move.to_play() == 1
    a, b = black_to_move.observation(), white_to_move.observation()
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a[0], b[1])  # the stone: the mover's, then the opponent's


def test_relative_tensors_are_kept():
    """Othello's tensor is already the observer's: the mover's view, used as is."""
    game = get_game("spiel/othello")
    for state in _random_states(game, np.random.default_rng(2), 20, 10):
        if not state.is_terminal():
            tensor = state.spiel_state.observation_tensor(state.to_play())
            np.testing.assert_array_equal(state.observation()[:-1].ravel(), tensor)


@pytest.mark.parametrize("name", ["hex(board_size=5)", "othello", "nim", "breakthrough"])
def test_spiel_batch_matches_object_batch(name):
    game = get_game(f"spiel/{name}")
    info, rng = game.info, np.random.default_rng(3)
    roots = _random_states(game, rng, 10, 6)
    roots = [r for r in roots if not r.is_terminal()]
    batches = [game.new_search_batch(roots, 8), ObjectBatch(roots, 8)]
    outputs = []
    for batch in batches:
        obs = np.zeros((len(roots), *info.observation_shape), np.float32)
        mask = np.zeros((len(roots), info.num_actions), bool)
        batch.observe_roots(obs, mask)
        outputs.append([obs, mask])
    leaf_action = [int(rng.choice(np.flatnonzero(r.legal_mask()))) for r in roots]
    leaves = (np.arange(len(roots)), np.zeros(len(roots)), np.ones(len(roots)), leaf_action)
    for batch, out in zip(batches, outputs):
        bufs = [np.zeros((len(roots), *info.observation_shape), np.float32),
                np.zeros((len(roots), info.num_actions), bool),
                np.zeros(len(roots), np.float32), np.zeros(len(roots), bool)]
        batch.expand(*leaves, *bufs)
        out += bufs
    for ours, reference in zip(*outputs):
        np.testing.assert_array_equal(ours, reference)
    with pytest.raises(GameError, match="illegal action"):
        bufs = [np.zeros((1, *info.observation_shape), np.float32),
                np.zeros((1, info.num_actions), bool), np.zeros(1, np.float32),
                np.zeros(1, bool)]
        illegal = int(np.flatnonzero(~roots[0].legal_mask())[0])
        batches[0].expand([0], [0], [2], [illegal], *bufs)


def _train(name: str, run_dir):
    from selfplay import config as cfg
    from selfplay.loop import train
    from tests.selfplay.util import tiny_overrides

    moves = LONG.get(name.partition("(")[0], 30)
    config = cfg.merge(cfg.preset(get_game(f"spiel/{name}").info.name), tiny_overrides(
        "run.max_iterations=2", "run.max_minutes=0", "run.checkpoint_every=1",
        f"selfplay.moves_per_iteration={moves}", "selfplay.parallel_games=4",
        "search.num_simulations=2", "search.max_num_considered_actions=2"))
    return train(config, run_dir, progress=False)


@pytest.mark.parametrize("name", TRAINED)
def test_train_then_play_a_legal_game_at_the_prompt(name, tmp_path):
    import torch

    from arena import TextSession, load_player

    torch.set_num_threads(1)
    summary = _train(name, tmp_path / "run")
    assert summary.checkpoint is not None and summary.games > 0
    player = load_player(f"spiel/{name}", summary.checkpoint, sims=2)
    session = TextSession(player.game, player, engine_first=bool(len(name) % 2))
    rng = np.random.default_rng(4)
    answers = [session.start()]
    for _ in range(2 * player.game.info.max_game_length):
        if session.done:
            break
        state = session.state
        move = state.action_to_text(int(rng.choice(np.flatnonzero(state.legal_mask()))))
        answers.append(session.handle(move))
        assert answers[-1].startswith("you play"), answers[-1]
    assert session.done and "game over" in answers[-1]
    replay = player.game.new_initial_state()
    for action in session.state.history():  # every move legal, from the start
        replay.apply(action)
    assert replay.is_terminal()


def test_play_eval_analyze_arena_and_elo_through_the_cli(tabula, tmp_path):
    name = "spiel/breakthrough(columns=5,rows=5)"
    ckpt = make_checkpoint(tmp_path / "b.safetensors", name, sims=2)
    moves = ["a5a4", "moves", "b9b8", "quit"]  # player 0, Black, starts on row 5
    result = tabula("play", "--game", "spiel/breakthrough(rows=5,columns=5)",
                    "--checkpoint", ckpt, stdin="\n".join(moves) + "\n")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "you play a5a4" in lines and lines[lines.index("you play a5a4") + 1].startswith(
        "engine plays ")
    assert any(line.startswith("legal moves: ") for line in lines)
    assert any(line.startswith("cannot parse move 'b9b8'") for line in lines)
    assert lines[-1] == "you quit; game abandoned"
    result = tabula("eval", "--checkpoint", ckpt, "--vs", "mcts", "--games", "2",
                    "--mcts-sims", "5", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "open_spiel MCTS (5 simulations" in result.stdout
    result = tabula("analyze", "--checkpoint", ckpt,
                    stdin=json.dumps({"id": 1, "moves": ["a5a4"], "sims": 4}) + "\n")
    answer = json.loads(result.stdout.splitlines()[0])
    assert answer["id"] == 1 and "error" not in answer
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for step in (1, 2):
        make_checkpoint(run / "checkpoints" / f"step-{step:08d}.safetensors", name,
                        seed=step, sims=2, step=step)
    result = tabula("arena", run, "--games", "2", "--sims", "2", "--opponent", "mcts:5",
                    "--no-progress")
    assert result.returncode == 0, result.stderr
    result = tabula("elo", run)
    assert result.returncode == 0 and "step-00000002" in result.stdout, result.stderr
