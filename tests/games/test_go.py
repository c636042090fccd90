"""Go: open_spiel's rules behind the State protocol, checked against pyspiel and by hand."""

from __future__ import annotations

import pickle

import numpy as np
import pyspiel
import pytest

from games import GameError, GameInfo, get_game, read_sgf
from games.go import GoGame, area_counts, legal_moves

COLUMNS = "ABCDEFGHJKLMNOPQRST"


def play(game: GoGame, moves: str, handicap=()):
    state = game.new_initial_state(handicap)
    for text in moves.split():
        state.apply(state.text_to_action(text))
    return state


def spiel_board(spiel_state, size: int) -> np.ndarray:
    """int[N, N] from pyspiel's own observation tensor (planes black, white, empty, to-play)."""
    tensor = np.asarray(spiel_state.observation_tensor(0)).reshape(4, size, size)
    return (tensor[0] + 2 * tensor[1]).astype(int)


def board_from_rows(rows: list[str]) -> np.ndarray:
    """int8[N, N] (row 0 = rank 1) from text rows written top (rank N) first."""
    return np.array([[".XO".index(c) for c in row] for row in reversed(rows)], dtype=np.int8)


def slow_area(board: np.ndarray) -> tuple[int, int]:
    """Tromp-Taylor area by a plain flood fill from every empty point."""
    size = board.shape[0]
    black, white = int((board == 1).sum()), int((board == 2).sum())
    for start in zip(*np.nonzero(board == 0)):
        seen, todo, colours = {start}, [start], set()
        while todo:
            r, c = todo.pop()
            for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= rr < size and 0 <= cc < size:
                    if board[rr, cc] == 0 and (rr, cc) not in seen:
                        seen.add((rr, cc))
                        todo.append((rr, cc))
                    elif board[rr, cc]:
                        colours.add(int(board[rr, cc]))
        black += colours == {1}
        white += colours == {2}
    return black, white


# Facts, vertices, registry.

def test_registered_games():
    for name, size in (("go9", 9), ("go13", 13), ("go19", 19)):
        game = get_game(name)
        assert game.info == GameInfo(name, size * size + 1, (17, size, size), 2, 3 * size * size,
                                     num_symmetries=8, has_draws=False, territory=True,
                                     record_format="sgf",
                                     gtp_setup=(f"boardsize {size}", "komi 7.5"))
        assert (game.size, game.komi, game.superko) == (size, 7.5, False)
    assert get_game("go/7").info.observation_shape == (17, 7, 7)
    with pytest.raises(GameError):
        get_game("go/x")


@pytest.mark.parametrize("size", [1, 26, 0])
def test_sizes_out_of_range(size):
    with pytest.raises(GameError, match="board size"):
        GoGame(size)


def test_rules_choice():
    assert GoGame(19).rules == "open_spiel" and GoGame(20).rules == "native"
    assert GoGame(20).spiel_game is None and GoGame(9, rules="native").spiel_game is None
    for size, rules in ((20, "open_spiel"), (9, "tromp")):
        with pytest.raises(GameError, match="rules"):
            GoGame(size, rules=rules)


@pytest.mark.parametrize("size, vertex, action", [
    (9, "A1", 0), (9, "J9", 80), (9, "j9", 80), (9, "B1", 1), (9, "A2", 9), (9, "pass", 81),
    (9, "PASS", 81), (19, "T19", 360), (19, "D4", 60), (19, "K10", 9 * 19 + 9),
    (19, "J10", 9 * 19 + 8), (2, "B2", 3),
])
def test_vertices(size, vertex, action):
    game = GoGame(size)
    assert game.vertex_to_action(vertex) == action
    assert game.action_to_vertex(action) == (vertex.upper() if vertex.lower() != "pass"
                                             else "pass")


@pytest.mark.parametrize("vertex", ["I5", "Z99", "K1", "A10", "A0", "", "D", "4D", "pas"])
def test_bad_vertices(vertex):
    with pytest.raises(GameError, match="bad vertex"):
        GoGame(9).vertex_to_action(vertex)


def test_action_vertex_round_trip_and_range():
    game = GoGame(19)
    for action in range(game.info.num_actions):
        assert game.vertex_to_action(game.action_to_vertex(action)) == action
    with pytest.raises(GameError):
        game.action_to_vertex(362)


def test_with_komi_gtp_setup_pickle():
    game = GoGame(13, 7.5, superko=True, max_game_length=50)
    other = game.with_komi(6)
    assert (other.size, other.komi, other.superko, other.max_game_length) == (13, 6.0, True, 50)
    assert other.info.has_draws and other.info.name == "go13"
    assert other.info.gtp_setup == ("boardsize 13", "komi 6")
    assert game.info.gtp_setup == ("boardsize 13", "komi 7.5")
    copy = pickle.loads(pickle.dumps(game))
    assert (copy.size, copy.komi, copy.superko, copy.max_game_length) == (13, 7.5, True, 50)


# Against open_spiel.

def _spiel_game(size: int, komi: float, length: int):
    return pyspiel.load_game("go", {"board_size": size, "komi": komi, "max_game_length": length})


@pytest.mark.parametrize("rules", ["open_spiel", "native"])
@pytest.mark.parametrize("size, games, length", [(5, 20, 75), (9, 6, 243), (13, 2, 300)])
def test_random_games_match_open_spiel(size, games, length, rules):
    rng = np.random.default_rng(size)
    game = GoGame(size, 7.5, max_game_length=length, rules=rules)
    reference = _spiel_game(size, 7.5, length)
    for _ in range(games):
        state, spiel = game.new_initial_state(), reference.new_initial_state()
        while not spiel.is_terminal():
            assert not state.is_terminal()
            mask = state.legal_mask()
            assert mask.tolist() == [bool(x) for x in spiel.legal_actions_mask()]
            assert state.to_play() == spiel.current_player()
            # Passing rarely, so games reach captures and ko fights.
            legal = np.flatnonzero(mask)
            weights = np.where(legal == game.pass_action, 0.2, 1.0)
            action = int(rng.choice(legal, p=weights / weights.sum()))
            mover = state.to_play()
            reward = state.apply(action)
            spiel.apply_action(action)
            assert np.array_equal(state.board(), spiel_board(spiel, size))
            assert reward == (spiel.returns()[mover] if spiel.is_terminal() else 0.0)
        assert state.is_terminal() and not state.legal_mask().any()
        assert state.returns().tolist() == list(spiel.returns())
        assert state.history() == spiel.history() == state.moves()
        assert area_counts(state.board().ravel(), size) == slow_area(state.board())


@pytest.mark.parametrize("rules", ["open_spiel", "native"])
def test_two_consecutive_passes_end_the_game_non_consecutive_do_not(rules):
    game = GoGame(5, 0.5, rules=rules)
    state = play(game, "pass C3 pass D4 pass")
    assert not state.is_terminal() and state.passes() == 1
    state.apply(game.vertex_to_action("E5"))
    assert state.passes() == 0 and not state.is_terminal()
    state.apply(game.pass_action)
    assert state.passes() == 1 and not state.is_terminal()
    state.apply(game.pass_action)
    assert state.passes() == 2 and state.is_terminal()
    # White played C3, D4, E5 and owns all 25 points.
    assert state.area_score() == -25.5 and state.returns().tolist() == [-1.0, 1.0]
    with pytest.raises(GameError, match="game is over"):
        state.apply(0)


def test_max_game_length_ends_and_scores():
    game = GoGame(3, 0.5, max_game_length=4)
    state = play(game, "A1 A3 B1 B3")
    # 3 | O O .     Black 2 stones, White 2 stones; the empty points touch both.
    # 1 | X X .
    assert state.is_terminal() and state.area_score() == -0.5
    assert state.returns().tolist() == [-1.0, 1.0]
    assert state.legal_mask().sum() == 0


# Hand-written positions.

@pytest.mark.parametrize("rules", ["open_spiel", "native"])
def test_capture_removes_stones(rules):
    game = GoGame(5, rules=rules)
    state = play(game, "C2 C3 B3 pass D3 pass")
    assert state.board()[2, 2] == 2
    assert state.apply(game.vertex_to_action("C4")) == 0.0
    assert state.board()[2, 2] == 0 and (state.board() == 1).sum() == 4
    assert (state.board() == 2).sum() == 0
    # Two stones at once: White B1+C1 in the corner, captured by Black D1.
    state = play(game, "A1 B1 A2 C1 B2 pass C2 pass D1")
    assert state.board()[0].tolist() == [1, 0, 0, 1, 0]


KO = "B1 C1 A2 D2 B3 C3 E5 B2 C2"
"""5x5, Black C2 captures White B2; White may not retake at B2 at once.

 3 . X O . .
 2 X . X O .
 1 . X O . .
   A B C D E
"""


@pytest.mark.parametrize("rules", ["open_spiel", "native"])
def test_ko_immediate_recapture_illegal_then_legal(rules):
    game = GoGame(5, rules=rules)
    state = play(game, KO)
    assert state.board()[1, 1] == 0 and state.to_play() == 1
    b2 = game.vertex_to_action("B2")
    assert not state.legal_mask()[b2]
    with pytest.raises(GameError, match="ko"):
        state.text_to_action("B2")
    with pytest.raises(GameError, match="ko"):
        state.apply(b2)
    state = play(game, KO + " E1 A5 B2")  # ko threats elsewhere, then the retake
    assert state.board()[1, 2] == 0 and state.board()[1, 1] == 2


@pytest.mark.parametrize("rules", ["open_spiel", "native"])
def test_suicide_illegal_capture_is_not_suicide(rules):
    game = GoGame(5, rules=rules)
    state = play(game, "A2 E5 B1")
    assert not state.legal_mask()[game.vertex_to_action("A1")]
    with pytest.raises(GameError, match="suicide"):
        state.text_to_action("a1")
    # Filling one's own last liberty is fine when it captures.
    state = play(game, "A3 A2 B2 B1 C1 pass A1")
    assert state.board()[0].tolist() == [1, 0, 1, 0, 0] and state.board()[1, 0] == 0
    with pytest.raises(GameError, match="occupied"):
        state.text_to_action("A3")
    with pytest.raises(GameError, match="suicide"):
        state.text_to_action("B1")  # White into the hole left by the capture


SUPERKO = "B2 A2 A1 pass B1 A2"
"""2x2: the position after 'B2 A2' comes back if Black now plays B2 (all captures in between)."""


@pytest.mark.parametrize("rules", ["open_spiel", "native"])
def test_superko_forbids_what_simple_ko_allows(rules):
    plain = play(GoGame(2, 0.5, rules=rules), SUPERKO)
    assert plain.board().tolist() == [[0, 0], [2, 0]]
    b2 = plain.game.vertex_to_action("B2")
    assert plain.legal_mask()[b2]
    plain.apply(b2)
    assert plain.board().tolist() == play(GoGame(2, 0.5), "B2 A2").board().tolist()

    strict = play(GoGame(2, 0.5, superko=True, rules=rules), SUPERKO)
    assert not strict.legal_mask()[b2]
    assert strict.legal_mask()[strict.game.pass_action]
    with pytest.raises(GameError, match="superko"):
        strict.text_to_action("B2")
    with pytest.raises(GameError, match="superko"):
        strict.apply(b2)


@pytest.mark.parametrize("size", [3, 4])
def test_superko_mask_matches_slow_reference(size):
    rng = np.random.default_rng(size)
    game = GoGame(size, 0.5, superko=True, max_game_length=4 * size * size)
    plain = GoGame(size, 0.5, max_game_length=4 * size * size)
    for _ in range(30):
        state, boards = game.new_initial_state(), {game.new_initial_state().board().tobytes()}
        while not state.is_terminal():
            mask = state.legal_mask()
            reference = play(plain, " ".join(game.action_to_vertex(a) for a in state.history()))
            expected = reference.legal_mask()
            for action in np.flatnonzero(expected[:-1]):
                child = reference.clone()
                child.apply(int(action))
                expected[action] = child.board().tobytes() not in boards
            assert mask.tolist() == expected.tolist()
            legal = np.flatnonzero(mask)
            weights = np.where(legal == game.pass_action, 0.1, 1.0)
            state.apply(int(rng.choice(legal, p=weights / weights.sum())))
            boards.add(state.board().tobytes())


def slow_legal(board: np.ndarray, colour: int, ko: int) -> list[bool]:
    """Legal points of int[N, N] by the rule itself: place the stone, remove enemy groups
    without liberties, keep the move if its own group then has one."""
    size = board.shape[0]

    def group_and_liberties(b, start):
        stones, todo, libs = {start}, [start], set()
        while todo:
            r, c = todo.pop()
            for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
                if 0 <= rr < size and 0 <= cc < size:
                    if b[rr, cc] == 0:
                        libs.add((rr, cc))
                    elif b[rr, cc] == b[start] and (rr, cc) not in stones:
                        stones.add((rr, cc))
                        todo.append((rr, cc))
        return stones, libs

    legal = []
    for p in range(size * size):
        r, c = divmod(p, size)
        if board[r, c] or p == ko:
            legal.append(False)
            continue
        b = board.copy()
        b[r, c] = colour
        for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if 0 <= rr < size and 0 <= cc < size and b[rr, cc] == 3 - colour:
                stones, libs = group_and_liberties(b, (rr, cc))
                if not libs:
                    for q in stones:
                        b[q] = 0
        legal.append(bool(group_and_liberties(b, (r, c))[1]))
    return legal + [True]


@pytest.mark.parametrize("size", [2, 3, 5, 9])
def test_legal_moves_kernel_matches_slow_reference_on_random_boards(size):
    rng = np.random.default_rng(size)
    zobrist = GoGame(size).zobrist
    for _ in range(300):
        board = rng.choice(3, size=(size, size), p=rng.dirichlet([1, 1, 1])).astype(np.int8)
        colour = int(rng.integers(1, 3))
        ko = int(rng.integers(-1, size * size))
        mask = legal_moves(board.ravel(), size, colour, ko, zobrist)
        assert mask.tolist() == slow_legal(board, colour, ko)


def test_area_scoring_with_shared_liberty():
    # C5 touches both colours and is nobody's; A5, A3, A1, B1 are Black's;
    # E5, E4, D3, E2, E1 are White's. Black 8 + 4 = 12, White 7 + 5 = 12.
    rows = [".X.O.",
            "XXOO.",
            ".XO.O",
            "XXXO.",
            "..XO."]
    game = GoGame(5, 0.5)
    state = play(game, "B5 D5 A4 C4 B4 D4 B3 C3 A2 E3 B2 D2 C2 D1 C1")
    assert np.array_equal(state.board(), board_from_rows(rows))
    assert area_counts(state.board().ravel(), 5) == (12, 12) == slow_area(state.board())
    assert state.area_score() == -0.5 and not state.is_terminal()
    state.apply(game.pass_action)
    state.apply(game.pass_action)
    assert state.returns().tolist() == [-1.0, 1.0]
    assert str(state).endswith("game over: W+0.5")
    assert sorted(state.final_status("alive")) == sorted(
        "B5 D5 A4 C4 B4 D4 B3 C3 A2 E3 B2 D2 C2 D1 C1".split())
    assert state.final_status("dead") == [] and state.final_status("seki") == []
    with pytest.raises(GameError):
        state.final_status("zombie")


# Handicap.

GTP_HANDICAP_19 = {
    2: "D4 Q16", 3: "D4 Q16 D16", 4: "D4 Q16 D16 Q4", 5: "D4 Q16 D16 Q4 K10",
    6: "D4 Q16 D16 Q4 D10 Q10", 7: "D4 Q16 D16 Q4 D10 Q10 K10",
    8: "D4 Q16 D16 Q4 D10 Q10 K4 K16", 9: "D4 Q16 D16 Q4 D10 Q10 K4 K16 K10",
}


@pytest.mark.parametrize("n", range(2, 10))
def test_fixed_handicap_19(n):
    game = get_game("go19")
    assert game.fixed_handicap(n) == GTP_HANDICAP_19[n].split()
    state = game.new_initial_state(game.fixed_handicap(n))
    assert state.to_play() == 1 and state.history() == [] and state.moves() == []
    assert state.handicap() == GTP_HANDICAP_19[n].split()
    assert (state.board() == 1).sum() == n and (state.board() == 2).sum() == 0
    assert state.legal_mask().sum() == 361 - n + 1


@pytest.mark.parametrize("size, n, expected", [
    (9, 5, "C3 G7 C7 G3 E5"), (9, 9, "C3 G7 C7 G3 C5 G5 E3 E7 E5"), (13, 4, "D4 K10 D10 K4"),
    (7, 4, "C3 E5 C5 E3"), (8, 2, "C3 F6"), (10, 4, "C3 H8 C8 H3"), (14, 3, "D4 L11 D11"),
])
def test_fixed_handicap_other_sizes(size, n, expected):
    assert GoGame(size).fixed_handicap(n) == expected.split()


@pytest.mark.parametrize("size, n", [(19, 1), (19, 10), (19, 0), (8, 5), (7, 5), (6, 2), (9, 10)])
def test_fixed_handicap_invalid(size, n):
    with pytest.raises(GameError, match="fixed handicap"):
        GoGame(size).fixed_handicap(n)


def test_big_boards_use_native_rules():
    game = GoGame(25)
    assert game.info.num_actions == 626 and game.vertex_to_action("Z25") == 624
    stones = game.fixed_handicap(9)
    assert stones == "D4 W22 D22 W4 D13 W13 N4 N22 N13".split()
    state = game.new_initial_state(stones)
    rng = np.random.default_rng(25)
    for _ in range(300):
        state.apply(int(rng.choice(np.flatnonzero(state.legal_mask()[:-1]))))
    assert state.observation().shape == (17, 25, 25) and len(state.history()) == 300
    assert "Z" in str(state).splitlines()[0]
    state.apply(625)
    state.apply(625)
    assert state.is_terminal() and abs(state.returns()[0]) == 1
    assert area_counts(state.board().ravel(), 25) == slow_area(state.board())


def test_handicap_game_play_and_errors():
    game = GoGame(9, 0.5)
    state = play(game, "E5 pass", handicap=["C3", "G7"])
    assert state.to_play() == 1 and state.history() == [40, 81] and state.passes() == 1
    assert not state.is_terminal()
    obs = state.observation()  # White to move: plane 16 zeros, Black's stones in plane 8
    assert obs[16].sum() == 0 and obs[8].sum() == 2 and obs[0].sum() == 1
    state.apply(game.pass_action)
    assert state.is_terminal() and state.to_play() == 0
    assert state.returns().tolist() == [1.0, -1.0]
    # Same position as open_spiel reached with the setup moves played out.
    spiel = _spiel_game(9, 0.5, 1000).new_initial_state()
    for action in (20, 81, 60, 40, 81, 81):
        spiel.apply_action(action)
    assert np.array_equal(state.board(), spiel_board(spiel, 9))
    for bad in (["C3", "C3"], ["pass"], ["I3"]):
        with pytest.raises(GameError):
            game.new_initial_state(bad)
    assert "handicap=['C3', 'G7']" in repr(state)


def test_handicap_random_games_match_open_spiel():
    rng = np.random.default_rng(7)
    game = GoGame(9, 7.5, max_game_length=100)
    stones = game.fixed_handicap(4)
    for _ in range(3):
        state = game.new_initial_state(stones)
        spiel = _spiel_game(9, 7.5, 1000).new_initial_state()
        for i, vertex in enumerate(stones):
            if i:
                spiel.apply_action(81)
            spiel.apply_action(game.vertex_to_action(vertex))
        while not state.is_terminal():
            assert state.legal_mask().tolist() == [bool(x) for x in spiel.legal_actions_mask()]
            action = int(rng.choice(np.flatnonzero(state.legal_mask()[:-1])))
            state.apply(action)
            spiel.apply_action(action)
            assert np.array_equal(state.board(), spiel_board(spiel, 9))
        assert len(state.history()) == 100


# Observation and symmetries.

def test_observation_planes_by_hand():
    game = GoGame(9)
    state = play(game, "D4 E5 pass C3")  # Black to move
    d4, e5, c3 = (3, 3), (4, 4), (2, 2)
    expected = np.zeros((17, 9, 9), dtype=np.float32)
    for t in range(4):  # Black's D4 in the positions now, -1, -2, -3; the start is empty
        expected[(t, *d4)] = 1
    expected[(8, *e5)] = expected[(8, *c3)] = 1  # White now: E5, C3
    expected[(9, *e5)] = expected[(10, *e5)] = 1  # after the pass and after E5
    expected[16] = 1
    assert state.observation().dtype == np.float32
    assert np.array_equal(state.observation(), expected)
    state.apply(game.vertex_to_action("A1"))  # White to move: its stones come first
    obs = state.observation()
    assert np.array_equal(obs[0], expected[8]) and obs[16].sum() == 0
    assert obs[8][0, 0] == 1 and obs[8].sum() == 2 and np.array_equal(obs[9], expected[0])


def test_observation_keeps_eight_positions():
    game = GoGame(5)
    state = play(game, "A1 E1 A2 E2 A3 E3 A4 E4 A5 E5")
    obs = state.observation()  # Black to move, 5 stones each, no captures
    assert [int(obs[t].sum()) for t in range(8)] == [5, 5, 4, 4, 3, 3, 2, 2]
    assert [int(obs[8 + t].sum()) for t in range(8)] == [5, 4, 4, 3, 3, 2, 2, 1]
    assert obs[16].all()


def _action_map(game: GoGame, k: int) -> np.ndarray:
    """Where symmetry k sends each action, read off one-hot policies."""
    eye = np.eye(game.info.num_actions, dtype=np.float32)
    obs = np.zeros((game.info.num_actions, *game.info.observation_shape), dtype=np.float32)
    _, policy = game.apply_symmetry(k, obs, eye)
    return policy.argmax(axis=1)


@pytest.mark.parametrize("k", range(8))
def test_symmetry_equals_transformed_game(k):
    game = GoGame(7)
    moves = "C3 D4 E2 pass B6 F5 A1 G7 D5 C4"
    state = play(game, moves)
    sigma = _action_map(game, k)
    assert sorted(sigma) == list(range(50)) and sigma[49] == 49
    image = play(game, " ".join(game.action_to_vertex(sigma[game.vertex_to_action(m)])
                                for m in moves.split()))
    policy = np.random.default_rng(k).random((1, 50)).astype(np.float32)
    obs, new_policy = game.apply_symmetry(k, state.observation()[None], policy)
    assert np.array_equal(obs[0], image.observation())
    assert np.array_equal(new_policy[0][sigma], policy[0])
    assert np.array_equal(image.legal_mask()[sigma], state.legal_mask())
    if k == 0:
        assert list(sigma) == list(range(50))


# Protocol details.

def test_clone_is_independent_and_history():
    game = GoGame(9)
    state = play(game, "E5 D4")
    copy = state.clone()
    copy.apply(game.vertex_to_action("C3"))
    assert state.history() == [40, 30] and copy.history() == [40, 30, 20]
    assert state.board()[2, 2] == 0 and copy.board()[2, 2] == 1
    assert state.to_play() == 0 and copy.to_play() == 1
    assert state.legal_mask()[20] and not copy.legal_mask()[20]


def test_text_round_trip_and_action_ids():
    game = GoGame(9)
    state = play(game, "E5")
    assert state.text_to_action(" d4 ") == 30 and state.text_to_action("30") == 30
    assert state.action_to_text(30) == "D4" and state.action_to_text(81) == "pass"
    with pytest.raises(GameError, match="bad vertex"):
        state.text_to_action("Z99")
    with pytest.raises(GameError, match="out of range"):
        state.text_to_action("82")


def test_board_text():
    text = str(play(GoGame(5), "A1 E5"))
    assert text.splitlines() == [
        "   A B C D E",
        " 5 . . . . O 5",
        " 4 . . . . . 4",
        " 3 . . . . . 3",
        " 2 . . . . . 2",
        " 1 X . . . . 1",
        "   A B C D E",
        "Black to move",
    ]


def test_search_batch_expands_like_apply():
    game = GoGame(5)
    root = play(game, "C3")
    batch = game.new_search_batch([root], capacity=4)
    obs = np.zeros((2, 17, 5, 5), np.float32)
    mask = np.zeros((2, 26), bool)
    batch.observe_roots(obs[:1], mask[:1])
    assert np.array_equal(obs[0], root.observation())
    reward, terminal = np.zeros(2, np.float32), np.zeros(2, bool)
    batch.expand(np.array([0, 0], np.int32), np.array([0, 0], np.int32),
                 np.array([1, 2], np.int32), np.array([7, 25], np.int32),
                 obs, mask, reward, terminal)
    child = root.clone()
    child.apply(7)
    assert np.array_equal(obs[0], child.observation()) and not terminal.any()


def test_format_record_is_sgf():
    game = get_game("go9")
    headers = {"First": "net-1", "Second": "gnugo", "Game": "go9", "Index": "3"}
    text = game.format_record(["E5", "pass", "pass"], "1-0", headers)
    sgf = read_sgf(text)
    assert (sgf.size, sgf.komi, sgf.result) == (9, 7.5, "B+73.5")  # 81 points - 7.5
    assert sgf.moves == [("B", "E5"), ("W", "pass"), ("B", "pass")]
    assert sgf.properties["PB"] == "net-1" and sgf.properties["PW"] == "gnugo"
    assert sgf.properties["GC"] == "Game: go9; Index: 3"
    assert read_sgf(game.format_record(["E5", "D4"], "0-1", {})).result == "W+"
    forfeit = game.format_record(["E5"], "0-1", {"Termination": "Black forfeits: crash"})
    assert read_sgf(forfeit).result == "W+F"
    assert read_sgf(game.format_record([], "1/2-1/2", {})).result == "0"
    assert read_sgf(game.format_record(["E5"], "*", {})).result == "?"
    assert game.info.record_format == "sgf"


def test_integer_komi_allows_draws():
    game = GoGame(3, 0)
    assert game.info.has_draws
    state = play(game, "pass pass")
    assert state.is_terminal() and state.returns().tolist() == [0.0, 0.0]
    assert str(state).endswith("game over: draw")


def test_states_in_threads_match_open_spiel():
    """Each thread gets its own open_spiel observation buffer."""
    import threading

    game, errors = GoGame(9, max_game_length=120), []

    def run(seed):
        try:
            rng = np.random.default_rng(seed)
            state, spiel = game.new_initial_state(), _spiel_game(9, 7.5, 1000).new_initial_state()
            while not state.is_terminal():
                action = int(rng.choice(np.flatnonzero(state.legal_mask())))
                state.apply(action)
                spiel.apply_action(action)
                assert np.array_equal(state.board(), spiel_board(spiel, 9))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
