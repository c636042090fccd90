"""Chess: open_spiel's rules behind the State protocol, checked against published
perft counts, hand-written positions and a slow reference for the planes."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from games import GameError, get_game
from games.chess import CASTLE_KINGSIDE, CASTLE_QUEENSIDE, ChessGame, ChessState
from tests.extras import need

DATA = Path(__file__).parent / "data"
START = "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1"


@pytest.fixture(scope="module")
def game() -> ChessGame:
    return get_game("chess")


def play(game: ChessGame, moves: str = "", fen: str | None = None) -> ChessState:
    state = game.new_initial_state(fen)
    for text in moves.split():
        state.apply(state.text_to_action(text))
    return state


def perft_table() -> list[tuple[str, int, int]]:
    """(fen, depth, nodes) from the wiki's table, depths with at most 200k nodes."""
    cases = []
    for line in (DATA / "chess_perft.epd").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fen, *counts = line.split(";")
        for count in counts:
            depth, nodes = count.split()
            if int(nodes) <= 200_000:
                cases.append((fen.strip(), int(depth[1:]), int(nodes)))
    return cases


# Facts and registry.

def test_info(game):
    info = game.info
    assert (info.name, info.num_actions, info.observation_shape) == ("chess", 4674, (119, 8, 8))
    assert (info.num_players, info.num_symmetries, info.has_draws) == (2, 1, True)
    assert info.max_game_length == 512
    assert game.info.record_format == "pgn"
    assert isinstance(game, ChessGame)


# Perft.

@pytest.mark.parametrize("fen,depth,nodes", perft_table())
def test_perft_published(game, fen, depth, nodes):
    assert game.new_initial_state(fen).perft(depth) == nodes


def test_divide_sums_to_perft(game):
    state = game.new_initial_state(
        "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1")
    divide = state.divide(2)
    assert len(divide) == 48 and sum(divide.values()) == 2039
    assert {"e1g1", "e1c1", "d5e6", "e2a6"} <= set(divide)
    assert state.perft(0) == 1


def test_perft_continues_through_draw_rules(game):
    # Every move here is drawn by the fifty-move rule, which perft ignores.
    state = game.new_initial_state("4k3/8/8/8/8/8/8/R3K3 w - - 99 80")
    assert state.perft(2) == sum(state.clone().divide(2).values())
    assert state.perft(1) == 15 and state.perft(2) > 15 * 3


# FEN.

@pytest.mark.parametrize("fen", sorted({case[0] for case in perft_table()}))
def test_fen_round_trip(game, fen):
    assert game.new_initial_state(fen).fen() == fen


def test_fen_after_moves(game):
    state = play(game, "e2e4")
    # No en passant square: no black pawn can take on e3 (as python-chess writes it).
    assert state.fen() == "rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1"
    state = play(game, "e2e4 a7a6 e4e5 d7d5")
    fen = "rnbqkbnr/1pp1pppp/p7/3pP3/8/8/PPPP1PPP/RNBQKBNR w KQkq d6 0 3"
    assert state.fen() == fen
    assert game.new_initial_state(fen).fen() == fen
    assert "e5d6" in game.new_initial_state(fen).legal_moves_uci()
    state = play(game, "e2e4 e7e5 g1f3 b8c6 e1e2")
    assert state.fen() == "r1bqkbnr/pppp1ppp/2n5/4p3/4P3/5N2/PPPPKPPP/RNBQ1B1R b kq - 3 3"
    assert (state.halfmove_clock(), state.fullmove_number()) == (3, 3)
    # f4xe3 would leave Black's king in check: no en passant square (open_spiel writes e3).
    pinned = play(game, "e2e4", "8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1")
    assert pinned.fen() == "8/2p5/3p4/KP5r/1R2Pp1k/8/6P1/8 b - - 0 1"
    assert str(pinned.spiel_state).split()[3] == "e3"


@pytest.mark.parametrize("fen,words", [
    ("garbage", "6 fields"),
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0", "6 fields"),
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP w KQkq - 0 1", "8 ranks"),
    ("rnbqkbnr/pppppppp/9/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", "unexpected"),
    ("rnbqkbnr/ppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1", "7 squares"),
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR x KQkq - 0 1", "side to move"),
    ("8/8/8/8/8/8/8/8 w - - 0 1", "one king"),
    ("k7/8/8/8/8/8/8/KK6 w - - 0 1", "one king"),
    ("kP6/8/8/8/8/8/8/K7 w - - 0 1", "pawn"),
    ("k7/8/8/8/8/8/8/R6K w - - 0 1", "not to move is in check"),
    ("4k3/8/8/8/8/8/3p4/4K3 b - - 0 1", "not to move is in check"),
    ("r3k2r/8/8/8/8/8/8/R3K1R1 w KQkq - 0 1", "castling right 'K'"),
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkx - 0 1", "castling rights"),
    ("rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq e6 0 1", "en passant"),
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR b KQkq e3 0 1", "en passant"),
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - -1 1", "counters"),
    ("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 0", "counters"),
])
def test_bad_fen(game, capfd, fen, words):
    with pytest.raises(GameError, match=words) as error:
        game.new_initial_state(fen)
    assert isinstance(error.value, ValueError) and "\n" not in str(error.value)
    assert capfd.readouterr().err == ""  # rejected before open_spiel sees it


def test_fen_with_four_fields(game):
    state = game.new_initial_state("rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq -")
    assert state.fen() == START


# Results and draws.

def test_checkmate(game):
    state = game.new_initial_state("k7/8/1K6/8/8/8/8/7R w - - 0 1")
    assert state.san(state.text_to_action("h1h8")) == "Rh8#"
    assert state.apply(state.text_to_action("Rh8#")) == 1.0
    assert state.is_terminal() and state.draw_reason() is None
    assert state.returns().tolist() == [1.0, -1.0]
    assert not state.legal_mask().any()
    fools = play(game, "f2f3 e7e5 g2g4")
    assert fools.apply(fools.text_to_action("Qh4#")) == 1.0
    assert fools.returns().tolist() == [-1.0, 1.0] and fools.to_play() == 0
    assert "Black wins" in str(fools)


def test_stalemate(game):
    state = game.new_initial_state("k7/8/8/1Q6/8/8/8/7K w - - 0 1")
    assert state.apply(state.text_to_action("b5b6")) == 0.0
    assert state.is_terminal() and state.draw_reason() == "stalemate"
    assert state.returns().tolist() == [0.0, 0.0]
    assert "draw (stalemate)" in str(state)


def test_threefold_repetition(game):
    state = play(game, "g1f3 g8f6 f3g1 f6g8 g1f3 g8f6 f3g1")
    assert not state.is_terminal()
    state.apply(state.text_to_action("f6g8"))
    assert state.is_terminal() and state.draw_reason() == "threefold repetition"
    assert state.returns().tolist() == [0.0, 0.0]


def test_repetition_needs_same_castling_rights(game):
    # The start board comes back at plies 8 and 12 without king-side castling
    # rights: only the second time for that position. The board after g1f3 g8f6
    # without those rights (plies 6, 10, 14) is the one that repeats three times.
    state = play(game, "g1f3 g8f6 h1g1 h8g8 g1h1 g8h8 f3g1 f6g8 g1f3 g8f6 f3g1 f6g8")
    assert not state.is_terminal()
    state.apply(state.text_to_action("g1f3"))
    assert not state.is_terminal()
    state.apply(state.text_to_action("g8f6"))
    assert state.draw_reason() == "threefold repetition"


def test_repetition_with_en_passant_right(game):
    # After e2e4 Black may take en passant: that position differs from the later ones
    # with the same pieces. The position after e2e4 e8d8 repeats first, at ply 10.
    state = play(game, "e2e4 e8d8 e1d1 d8e8 d1e1 e8d8 e1d1 d8e8 d1e1",
                 "4k3/8/8/8/3p4/8/4P3/4K3 w - - 0 1")
    assert not state.is_terminal()
    state.apply(state.text_to_action("e8d8"))
    assert state.draw_reason() == "threefold repetition"


def test_fifty_move_rule(game):
    state = game.new_initial_state("k7/8/8/8/8/8/8/1R5K w - - 99 80")
    assert not state.is_terminal()
    state.apply(state.text_to_action("h1g1"))
    assert state.halfmove_clock() == 100
    assert state.is_terminal() and state.draw_reason() == "fifty-move rule"
    assert state.returns().tolist() == [0.0, 0.0]
    # A pawn move resets the clock; a mate on the 100th ply stands.
    pawn = game.new_initial_state("k7/8/8/8/8/8/P7/1R5K w - - 99 80")
    pawn.apply(pawn.text_to_action("a2a3"))
    assert not pawn.is_terminal() and pawn.halfmove_clock() == 0
    mate = game.new_initial_state("k7/8/1K6/8/8/8/8/7R w - - 99 80")
    mate.apply(mate.text_to_action("h1h8"))
    assert mate.returns().tolist() == [1.0, -1.0] and mate.draw_reason() is None


@pytest.mark.parametrize("fen,dead", [
    ("k7/8/8/8/8/8/8/7K w - - 0 1", True),
    ("k7/8/8/8/8/8/8/6BK w - - 0 1", True),
    ("k7/8/8/8/8/8/8/6NK b - - 0 1", True),
    ("kb6/8/8/8/8/8/8/6BK w - - 0 1", True),   # bishops on one colour
    ("kb6/8/8/8/8/8/8/5B1K w - - 0 1", False),  # opposite colours
    ("k7/8/8/8/8/8/8/5NNK w - - 0 1", False),
    ("kn6/8/8/8/8/8/8/6NK w - - 0 1", False),
    ("k7/8/8/8/8/8/6P1/7K w - - 0 1", False),
])
def test_insufficient_material(game, fen, dead):
    state = game.new_initial_state(fen)
    assert state.is_terminal() == dead
    assert state.draw_reason() == ("insufficient material" if dead else None)


def test_insufficient_material_by_capture(game):
    state = game.new_initial_state("k7/8/8/8/8/8/6r1/7K w - - 0 1")
    assert state.apply(state.text_to_action("Kxg2")) == 0.0
    assert state.draw_reason() == "insufficient material"


def test_move_limit():
    game = ChessGame(max_game_length=4)
    state = play(game, "g1f3 g8f6 b1c3")
    assert not state.is_terminal() and state.draw_reason() is None
    assert state.apply(state.text_to_action("b8c6")) == 0.0
    assert state.is_terminal() and state.draw_reason() == "move limit"
    assert "game over: draw (move limit)" in str(state)
    assert state.returns().tolist() == [0.0, 0.0] and not state.legal_mask().any()
    with pytest.raises(GameError, match="game is over"):
        state.apply(0)
    with pytest.raises(GameError, match="positive"):
        ChessGame(max_game_length=0)


# Castling, en passant, promotion.

def test_castling(game):
    fen = "r3k2r/8/8/8/8/8/8/R3K2R w KQkq - 0 1"
    state = game.new_initial_state(fen)
    assert state.text_to_action("e1g1") == state.text_to_action("O-O") == CASTLE_KINGSIDE
    assert state.text_to_action("e1c1") == state.text_to_action("0-0-0") == CASTLE_QUEENSIDE
    assert state.action_to_text(CASTLE_KINGSIDE) == "e1g1"
    assert state.san(CASTLE_QUEENSIDE) == "O-O-O"
    assert play(game, "e1g1", fen).fen() == "r3k2r/8/8/8/8/8/8/R4RK1 b kq - 1 1"
    black = play(game, "e1g1 e8c8", fen)
    assert black.fen() == "2kr3r/8/8/8/8/8/8/R4RK1 w - - 2 2"
    assert black.history() == [CASTLE_KINGSIDE, CASTLE_QUEENSIDE]
    assert play(game, "h1h2", fen).fen().split()[2] == "Qkq"
    assert play(game, "e1e2", fen).fen().split()[2] == "kq"
    assert play(game, "h1h8", fen).fen().split()[2] == "Qq"  # rook taken on h8
    rights_gone = play(game, "e1f1 e8d8 f1e1 d8e8", fen)
    assert not {"e1g1", "e1c1", "e8g8"} & set(rights_gone.legal_moves_uci())


@pytest.mark.parametrize("fen,king_side,queen_side", [
    ("4kr2/8/8/8/8/8/8/R3K2R w KQ - 0 1", False, True),   # f1 attacked
    ("3rk3/8/8/8/8/8/8/R3K2R w KQ - 0 1", True, False),   # d1 attacked
    ("1r2k3/8/8/8/8/8/8/R3K2R w KQ - 0 1", True, True),   # b1 attacked: allowed
    ("4k3/8/8/8/4r3/8/8/R3K2R w KQ - 0 1", False, False),  # in check
    ("4k3/8/8/8/8/8/8/RN2K1NR w KQ - 0 1", False, False),  # blocked
])
def test_castling_through_check(game, fen, king_side, queen_side):
    moves = game.new_initial_state(fen).legal_moves_uci()
    assert ("e1g1" in moves, "e1c1" in moves) == (king_side, queen_side)


def test_en_passant(game):
    fen = "4k3/8/8/8/3p4/8/4P3/4K3 w - - 0 1"
    state = play(game, "e2e4", fen)
    assert state.fen() == "4k3/8/8/8/3pP3/8/8/4K3 b - e3 0 1"
    assert state.san(state.text_to_action("d4e3")) == "dxe3"
    taken = play(game, "d4e3", state.fen())
    assert taken.fen() == "4k3/8/8/8/8/4p3/8/4K3 w - - 0 2"
    later = play(game, "e2e4 e8d8 e1d1", fen)
    assert "d4e3" not in later.legal_moves_uci()
    with pytest.raises(GameError, match="illegal move 'd4e3'"):
        later.text_to_action("d4e3")


def test_promotions(game):
    fen = "k2r4/4P3/8/8/8/8/7p/K7 w - - 0 1"
    state = game.new_initial_state(fen)
    actions = set()
    for piece in "qrbn":
        for target in ("e8", "d8"):
            move = f"e7{target}{piece}"
            action = state.text_to_action(move)
            assert state.action_to_text(action) == move
            actions.add(action)
            after = play(game, move, fen)
            square = after.board()[56 + "abcdefgh".index(target[0])]
            assert square == piece.upper()
    assert len(actions) == 8
    assert state.san(state.text_to_action("e7d8n")) == "exd8=N"
    assert state.text_to_action("exd8=Q+") == state.text_to_action("e7d8q")
    assert state.text_to_action("exd8N") == state.text_to_action("e7d8n")
    assert "e7e8" not in state.legal_moves_uci()
    black = play(game, "a1b1 h2h1r", fen)
    assert black.board()[7] == "r" and black.fen().startswith("k2r4/4P3/8/8/8/8/8/1K5r w")


def test_actions_relative_to_mover(game):
    white = game.new_initial_state("k7/3P4/8/8/8/8/8/7K w - - 0 1")
    black = game.new_initial_state("k7/8/8/8/8/8/3p4/7K b - - 0 1")
    assert white.text_to_action("d7d8q") == black.text_to_action("d2d1q")
    assert white.text_to_action("d7d8n") == black.text_to_action("d2d1n")
    start = game.new_initial_state()
    assert play(game, "e2e4").text_to_action("e7e5") == start.text_to_action("e2e4")


# Text.

def test_text_round_trips_on_random_games(game):
    rng = np.random.default_rng(7)
    state = game.new_initial_state()
    for _ in range(60):
        if state.is_terminal():
            break
        legal = np.flatnonzero(state.legal_mask())
        moves = state.legal_moves_uci()
        assert len(moves) == len(legal) == len(set(moves))
        for action in legal:
            assert state.text_to_action(state.action_to_text(action)) == action
            assert state.text_to_action(state.san(action)) == action
        state.apply(int(rng.choice(legal)))


@pytest.mark.parametrize("text", ["", "xyz", "e9e4", "e2e4e", "i2i4", "O-O-O-O", "Nf3f"])
def test_malformed_move(game, text):
    with pytest.raises(GameError, match="malformed"):
        game.new_initial_state().text_to_action(text)


@pytest.mark.parametrize("text", ["e2e5", "Nf6", "e1g1", "O-O", "e7e5", "Ke2", "4000"])
def test_illegal_move(game, text):
    state = game.new_initial_state()
    with pytest.raises(GameError, match=f"illegal move '{text}'"):
        state.text_to_action(text)
    with pytest.raises(GameError, match="illegal move"):
        state.apply(4000)


def test_action_ids_as_text(game):
    state = game.new_initial_state()
    e2e4 = state.text_to_action("e2e4")
    assert state.text_to_action(str(e2e4)) == e2e4
    assert state.text_to_action(" e4 ") == state.text_to_action("E2E4".lower()) == e2e4


def test_ambiguous_san(game):
    state = game.new_initial_state("4k3/8/8/8/8/8/4K3/R6R w - - 0 1")
    with pytest.raises(GameError, match="illegal move 'Rd1'"):
        state.text_to_action("Rd1")
    assert state.action_to_text(state.text_to_action("Rad1")) == "a1d1"
    assert state.action_to_text(state.text_to_action("Rhd1")) == "h1d1"


def test_action_to_text_of_any_action(game):
    state = game.new_initial_state()
    # e2e5 (a queen-like move of three squares up) is no legal move, but has text.
    e2e4 = state.text_to_action("e2e4")
    assert state.action_to_text(e2e4 + 1) == "e2e5"
    with pytest.raises(GameError, match="not a move on the board"):
        state.action_to_text(0 * 73 + 9 + 0)  # a1 to the left edge: off the board
    with pytest.raises(GameError):
        state.action_to_text(4674)


def test_str(game):
    text = str(play(game, "e2e4"))
    assert "4 | . . . . P . . . |" in text and "Black to move" in text
    assert text.splitlines()[1].startswith("8 | r n b q k b n r")
    assert text.endswith("FEN: rnbqkbnr/pppppppp/8/8/4P3/8/PPPP1PPP/RNBQKBNR b KQkq - 0 1")


# Observation.

def slow_planes(fen: str, black_view: bool) -> np.ndarray:
    """float32[12, 8, 8]: the mover's P N B R Q K then the opponent's, from a FEN board."""
    planes = np.zeros((12, 8, 8), dtype=np.float32)
    for i, text in enumerate(fen.split()[0].split("/")):
        rank, file = 7 - i, 0
        for ch in text:
            if ch.isdigit():
                file += int(ch)
                continue
            own = ch.islower() == black_view
            row = 7 - rank if black_view else rank
            planes["PNBRQK".index(ch.upper()) + (0 if own else 6), row, file] = 1
            file += 1
    return planes


def test_observation_start(game):
    obs = game.new_initial_state().observation()
    assert obs.shape == (119, 8, 8) and obs.dtype == np.float32
    assert obs[0, 1].tolist() == [1] * 8 and obs[0].sum() == 8  # own pawns on row 1
    assert obs[5, 0, 4] == 1 and obs[5].sum() == 1              # own king e1
    assert obs[6, 6].sum() == 8 and obs[11, 7, 4] == 1          # opponent's pawns, king
    assert not obs[12:112].any()                                 # no repetitions or history
    assert obs[112:, 0, 0].tolist() == pytest.approx([0, 1 / 200, 1, 1, 1, 1, 0])


def test_observation_after_e4_black_to_move(game):
    state = play(game, "e2e4")
    obs = state.observation()
    assert obs[0, 1].tolist() == [1] * 8 and obs[0].sum() == 8  # Black's pawns, flipped
    assert obs[5, 0, 4] == 1                                     # Black's king e8 -> row 0
    assert obs[6, 6].tolist() == [1, 1, 1, 1, 0, 1, 1, 1]        # White's pawns rank 2 -> row 6
    assert obs[6, 4, 4] == 1                                     # e4 -> row 4
    assert np.array_equal(obs[14:26], slow_planes(START, black_view=True))
    assert not obs[28:112].any()
    assert obs[112:, 0, 0].tolist() == pytest.approx([1, 1 / 200, 1, 1, 1, 1, 0])
    later = play(game, "e2e4 e7e5 g1f3").observation()
    assert later[112:, 0, 0].tolist() == pytest.approx([1, 2 / 200, 1, 1, 1, 1, 0.01])


def test_observation_castling_planes(game):
    obs = game.new_initial_state("r3k2r/8/8/8/8/8/8/R3K2R b Kq - 5 40").observation()
    assert obs[112:, 0, 0].tolist() == pytest.approx([1, 40 / 200, 0, 1, 1, 0, 0.05])


def test_observation_repetition_planes(game):
    state = play(game, "g1f3 g8f6 f3g1 f6g8")
    obs = state.observation()
    assert obs[12].all() and not obs[13].any()         # the start, seen once before
    assert not obs[14 + 12].any() and not obs[4 * 14 + 12].any()
    state.apply(state.text_to_action("g1f3"))
    obs = state.observation()
    assert obs[12].all() and obs[14 + 12].all() and not obs[2 * 14 + 12].any()


def test_observation_history_matches_slow_reference(game):
    rng = np.random.default_rng(3)
    state = game.new_initial_state()
    fens = [state.fen()]
    for ply in range(40):
        obs = state.observation()
        black = state.to_play() == 1
        for t in range(8):
            expected = (slow_planes(fens[-1 - t], black) if t < len(fens)
                        else np.zeros((12, 8, 8), np.float32))
            assert np.array_equal(obs[14 * t:14 * t + 12], expected), (ply, t)
        fields = state.fen().split()
        assert obs[118, 0, 0] == pytest.approx(int(fields[4]) / 100)
        assert obs[113, 0, 0] == pytest.approx(int(fields[5]) / 200)
        if state.is_terminal():
            break
        state.apply(int(rng.choice(np.flatnonzero(state.legal_mask()))))
        fens.append(state.fen())


# The State protocol.

def test_clone_is_independent(game):
    state = play(game, "e2e4 e7e5")
    obs, fen = state.observation(), state.fen()
    child = state.clone()
    child.apply(child.text_to_action("g1f3"))
    assert state.fen() == fen and np.array_equal(state.observation(), obs)
    assert state.history() == [2426, 2426] and len(child.history()) == 3
    assert child.to_play() == 1 and state.to_play() == 0


def test_random_games_against_open_spiel(game):
    rng = np.random.default_rng(11)
    for _ in range(2):
        state = game.new_initial_state()
        while not state.is_terminal():
            spiel = state.spiel_state
            assert np.flatnonzero(state.legal_mask()).tolist() == sorted(spiel.legal_actions())
            assert state.to_play() == 1 - spiel.current_player()
            assert state.fen().split()[1] == "wb"[state.to_play()]
            state.apply(int(rng.choice(np.flatnonzero(state.legal_mask()))))
        white, black = state.returns()
        assert white == -black
        assert (state.draw_reason() is None) == (white != 0)
        assert len(state.history()) <= game.info.max_game_length


@pytest.mark.parametrize("fen,seed", [
    (START, 0), (START, 1),
    ("r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1", 2),
    ("8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1", 3),
    ("r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1", 4),
])
def test_random_games_against_python_chess(game, fen, seed):
    """Legal moves, FEN and the result agree with python-chess (a dev dependency)."""
    chess = need("chess")
    rng = np.random.default_rng(seed)
    state, board = game.new_initial_state(fen), chess.Board(fen)
    while True:
        assert state.fen() == board.fen()
        draw = {"threefold repetition": board.is_repetition(3),
                "fifty-move rule": board.halfmove_clock >= 100,
                "insufficient material": board.is_insufficient_material(),
                "stalemate": board.is_stalemate()}
        if state.is_terminal():
            break
        assert not board.is_checkmate() and not any(draw.values()), board.fen()
        assert sorted(state.legal_moves_uci()) == sorted(m.uci() for m in board.legal_moves)
        action = int(rng.choice(np.flatnonzero(state.legal_mask())))
        board.push_uci(state.action_to_text(action))
        state.apply(action)
    reason = state.draw_reason()
    if reason is None:
        assert board.is_checkmate()
        assert state.returns()[int(board.turn == chess.WHITE)] == 1  # the side not to move won
    elif reason == "move limit":
        assert len(state.history()) == game.info.max_game_length
    else:
        assert draw[reason], (reason, board.fen())


@pytest.mark.xfail(strict=True, reason="open_spiel tells positions apart by an en passant "
                   "square whose capture is illegal (pinned pawn); FIDE does not")
def test_repetition_after_illegal_en_passant(game):
    # After e2e4, f4xe3 would expose Black's king on h4 to the rook on b4, so the
    # position is the same as when it comes back at plies 5 and 9: a threefold repetition.
    state = play(game, "e2e4 h5h6 b4b3 h6h5 b3b4 h5h6 b4b3 h6h5 b3b4",
                 "8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1")
    assert state.draw_reason() == "threefold repetition"


def test_pickle(game):
    state = play(game, "e2e4 e7e5 g1f3", "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1")
    copy = pickle.loads(pickle.dumps(state))
    assert copy.fen() == state.fen() and copy.history() == state.history()
    assert np.array_equal(copy.observation(), state.observation())
    assert pickle.loads(pickle.dumps(game)).max_game_length == game.max_game_length


def test_search_batch_and_symmetry(game):
    roots = [game.new_initial_state(), play(game, "e2e4")]
    batch = game.new_search_batch(roots, capacity=4)
    obs = np.zeros((2, 119, 8, 8), np.float32)
    mask = np.zeros((2, 4674), bool)
    batch.observe_roots(obs, mask)
    assert mask.sum(axis=1).tolist() == [20, 20]
    policy = np.ones((1, 4674), np.float32)
    out_obs, out_policy = game.apply_symmetry(0, obs[:1], policy)
    assert np.array_equal(out_obs, obs[:1]) and np.array_equal(out_policy, policy)
    with pytest.raises(GameError, match="identity"):
        game.apply_symmetry(1, obs[:1], policy)


# PGN.

def test_pgn(game):
    text = game.format_record(["e2e4", "e7e5", "g1f3", "b8c6", "e1e2"], "1/2-1/2",
                              {"First": "Tabula", "Second": "Stockfish", "Event": "test",
                               "TimeControl": "40/60"})
    assert text == "\n".join([
        '[Event "test"]', '[Site "?"]', '[Date "????.??.??"]', '[Round "?"]',
        '[White "Tabula"]', '[Black "Stockfish"]', '[Result "1/2-1/2"]',
        '[TimeControl "40/60"]', "", "1. e4 e5 2. Nf3 Nc6 3. Ke2 1/2-1/2", ""])


def test_pgn_from_fen(game):
    fen = "r3k2r/8/8/8/8/8/8/R3K2R b KQkq - 3 12"
    text = game.format_record(["e8g8", "e1c1", "a8a1"], "0-1",
                              {"First": "A", "Second": "B", "FEN": fen})
    assert '[SetUp "1"]' in text and f'[FEN "{fen}"]' in text
    assert text.splitlines()[-1] == "12... O-O 13. O-O-O Ra1+ 0-1"


def test_pgn_wraps_and_stops_at_illegal_moves(game):
    rng = np.random.default_rng(5)
    state, moves = game.new_initial_state(), []
    for _ in range(120):
        if state.is_terminal():
            break
        action = int(rng.choice(np.flatnonzero(state.legal_mask())))
        moves.append(state.action_to_text(action))
        state.apply(action)
    text = game.format_record(moves, "*", {})
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.rstrip().endswith("*") and '[White "?"]' in text
    bad = game.format_record(["e2e4", "e2e4", "d2d4"], "*", {})
    assert bad.splitlines()[-1] == "1. e4 {illegal move e2e4} *"
    with pytest.raises(GameError, match="result"):
        game.format_record([], "2-0", {})
