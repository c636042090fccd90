"""SGF reading and writing for Go records."""

from __future__ import annotations

import pytest

from games import SgfError, SgfGame, gtp_to_sgf, read_sgf, sgf_to_gtp, write_sgf


# SGF column = 'a' + column index (GTP letters skip I, so J is index 8 -> 'i');
# SGF row = 'a' + (size - rank).
@pytest.mark.parametrize("size, vertex, point", [
    (19, "D4", "dp"), (19, "A1", "as"), (19, "T19", "sa"), (19, "J10", "ij"), (19, "K10", "jj"),
    (19, "Q16", "pd"), (9, "J9", "ia"), (9, "A9", "aa"), (9, "E5", "ee"), (13, "N1", "mm"),
    (25, "Z25", "ya"), (25, "A1", "ay"), (2, "B1", "bb"), (9, "pass", ""),
])
def test_known_points(size, vertex, point):
    assert gtp_to_sgf(vertex, size) == point
    assert sgf_to_gtp(point, size) == vertex
    assert gtp_to_sgf(vertex.lower(), size) == point


def test_tt_is_a_pass_only_up_to_19x19():
    assert sgf_to_gtp("tt", 19) == "pass" and sgf_to_gtp("tt", 9) == "pass"
    assert sgf_to_gtp("tt", 20) == "U1"  # column t = 20th letter = U (I skipped)


@pytest.mark.parametrize("size", [2, 9, 13, 19, 20, 25])
def test_every_point_round_trips(size):
    for rank in range(1, size + 1):
        for column in "ABCDEFGHJKLMNOPQRSTUVWXYZ"[:size]:
            vertex = f"{column}{rank}"
            assert sgf_to_gtp(gtp_to_sgf(vertex, size), size) == vertex


@pytest.mark.parametrize("vertex", ["I5", "K9", "A10", "A0", "Z1", "", "D", "55"])
def test_bad_vertices(vertex):
    with pytest.raises(SgfError):
        gtp_to_sgf(vertex, 9)


@pytest.mark.parametrize("point", ["j", "ja", "aj", "abc", "A1", "zz"])
def test_bad_points(point):
    with pytest.raises(SgfError):
        sgf_to_gtp(point, 9)


def test_write_sgf_exact_text():
    text = write_sgf(9, 6.5, [("W", "E5"), ("B", "pass"), ("W", "J1")], "W+R",
                     handicap=["C3", "G7"], properties={"PB": "a]b\\c", "PW": "gnugo"})
    assert text == ("(;FF[4]GM[1]SZ[9]KM[6.5]HA[2]AB[cg][gc]PB[a\\]b\\\\c]PW[gnugo]RE[W+R]\n"
                    ";W[ee]\n;B[]\n;W[ii])\n")
    assert write_sgf(5, None, [], "") == "(;FF[4]GM[1]SZ[5])\n"
    assert write_sgf(5, 0, [], "", properties={"KM": "3"}) == "(;FF[4]GM[1]SZ[5]KM[0])\n"


def test_write_read_round_trip():
    moves = [("B", "D4"), ("W", "Q16"), ("B", "pass"), ("W", "T19"), ("B", "A1"), ("W", "pass")]
    props = {"PB": "net ]v2[", "PW": "C:\\engines\\gnugo", "GC": "Match: x; Index: 1",
             "DT": "2024-06-11"}
    text = write_sgf(19, 7.5, moves, "B+12.5", ["D16", "Q4"], props)
    game = read_sgf(text)
    assert game == SgfGame(size=19, komi=7.5, handicap=["D16", "Q4"], moves=moves,
                           result="B+12.5", properties={
                               "FF": "4", "GM": "1", "SZ": "19", "KM": "7.5", "HA": "2",
                               **props, "RE": "B+12.5"})


def test_read_hand_written_sgf():
    text = """Some text before the game tree is ignored.
    (;FF[3]GaMe[1]SiZe[9]KoMi[5.5]PB[Alice]PW[Bob]RE[W+3.5]
      C[a comment with \\] and a soft \\
line break]AB[cc:dd][gg]
     ;B[ee]  ;W[tt]
     (;B[dc];W[ed])
     (;B[aa]))
    (;SZ[5];B[aa])"""
    game = read_sgf(text)
    assert (game.size, game.komi, game.result) == (9, 5.5, "W+3.5")
    assert game.handicap == ["C7", "D7", "C6", "D6", "G3"]
    assert game.moves == [("B", "E5"), ("W", "pass"), ("B", "D7"), ("W", "E6")]
    assert game.properties["PB"] == "Alice" and game.properties["PW"] == "Bob"
    assert game.properties["C"] == "a comment with ] and a soft line break"
    assert "AB" not in game.properties


def test_defaults():
    game = read_sgf("(;B[pd])")
    assert (game.size, game.komi, game.handicap, game.result) == (19, 0.0, [], "")
    assert game.moves == [("B", "Q16")]


@pytest.mark.parametrize("text, message", [
    ("", "no game tree"),
    ("just words", "no game tree"),
    ("(B[aa])", "no game tree"),
    ("(;SZ[9];B[aa]", "unbalanced"),
    ("(;SZ[9]C[never closed)", "unterminated"),
    ("(;SZ[9];B[aa]))x(", None),  # trailing junk after the first tree is ignored
    ("(;GM[2]SZ[8])", "not a Go record"),
    ("(;SZ[9];B[zz])", "bad SGF point"),
    ("(;SZ[9];B[jj])", "bad SGF point"),
    ("(;SZ[9];B[a])", "bad SGF point"),
    ("(;SZ[9]AB[aa:zz])", "bad SGF point"),
    ("(;SZ[9]AW[aa])", "AW"),
    ("(;SZ[9];B[aa];AB[bb])", "AB"),
    ("(;SZ[abc])", "board size"),
    ("(;SZ[30])", "board size"),
    ("(;SZ[9]KM[x])", "komi"),
    ("(;SZ[9]B)", "no value"),
    ("(;SZ[9]((;B[aa])))", "at least one node"),
])
def test_malformed(text, message):
    if message is None:
        assert read_sgf(text).moves == [("B", "A9")]
        return
    with pytest.raises(SgfError, match=message):
        read_sgf(text)


def test_sgf_error_is_a_value_error():
    assert issubclass(SgfError, ValueError)


def test_write_rejects_bad_input():
    for moves in ([("X", "A1")], [("B", "I1")]):
        with pytest.raises(SgfError):
            write_sgf(9, 7.5, moves)
    with pytest.raises(SgfError):
        write_sgf(9, 7.5, [], properties={"pb": "x"})
    with pytest.raises(SgfError):
        write_sgf(26, 7.5, [])
    with pytest.raises(SgfError):
        write_sgf(9, 7.5, [], handicap=["pass"])
