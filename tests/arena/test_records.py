"""PGN reading (damaged files included) and PGN, SGF and plain record writing."""

from __future__ import annotations

import pytest

from arena.matches.records import (PgnProblem, format_move_list, format_pgn, format_sgf, gtp_to_sgf,
                           pgn_results, read_pgn)

# Seven games; 3 lacks Black, 5 has a bad result, 6 is unfinished. CRLF is added below.
MULTI = """\ufeff% a PGN escape line, ignored
[Event "Club \\"open\\" 2024"]
[Site "Here"]
[White "Alice"]
[Black "Bob"]
[Result "1-0"]

1. e4 {a comment with [%clk 0:01:00] and ) inside} e5 (1... c5 2. Nf3 {side} (2. c3))
2. Nf3 $1 ; rest of the line: 0-1 (ignored)
Nc6 3. Bb5 1-0

[White "Carol"]
[Black "Dan"]
[Result "1/2-1/2"]

1. d4 d5 1/2-1/2

[White "Eve"]
[Result "0-1"]

1. c4 0-1

[White "Fay"]
[Black "Gus"]
[Result "0-1"]

{A multi-line
comment} 1. e4 e5 0-1
[White "Hal"]
[Black "Ida"]
[Result "2-0"]

1. e4 *

[White "Jo"]
[Black "Kim"]
[Result "*"]

1. e4 *

[White "Lee"]
[Black "Max \\\\ Co"]
[Result "0-1"]

1. f3 e5 2. g4 Qh4# 0-1
"""


def test_multi_game_file():
    games, problems = read_pgn(MULTI.replace("\n", "\r\n"))
    assert [g.number for g in games] == [1, 2, 4, 6, 7]
    assert problems == [PgnProblem(3, "missing Black tag"),
                        PgnProblem(5, "result '2-0' is not 1-0, 0-1 or 1/2-1/2")]
    first = games[0]
    assert first.headers == {"Event": 'Club "open" 2024', "Site": "Here", "White": "Alice",
                             "Black": "Bob", "Result": "1-0"}
    assert (first.white, first.black, first.result) == ("Alice", "Bob", "1-0")
    assert first.movetext.startswith("1. e4 {") and first.movetext.endswith("3. Bb5 1-0")
    assert games[4].black == "Max \\ Co"


def test_pgn_results():
    results, problems, unfinished = pgn_results(MULTI)
    assert results == [("Alice", "Bob", 1.0), ("Carol", "Dan", 0.5), ("Fay", "Gus", 0.0),
                       ("Lee", "Max \\ Co", 0.0)]
    assert [p.number for p in problems] == [3, 5] and unfinished == 1


def test_header_only_games_and_blank_files():
    text = ('[White "A"]\n[Black "B"]\n[Result "1-0"]\n\n'
            '[White "C"]\n[Black "D"]\n[Result "0-1"]\n')
    games, problems = read_pgn(text)
    assert [(g.white, g.black, g.result, g.movetext) for g in games] == [
        ("A", "B", "1-0", ""), ("C", "D", "0-1", "")]
    assert problems == []
    # Without the blank line, a repeated tag name starts the next game.
    assert read_pgn(text.replace("\n\n", "\n")) == (games, [])
    assert read_pgn("") == ([], []) and read_pgn("\n\r\n  \n") == ([], [])


@pytest.mark.parametrize("text, message", [
    ('[White "A"]\n[Black "B"]\n\n1. e4 1-0\n', "missing Result tag"),
    ('[Event "x"]\n\n1. e4 1-0\n', "missing White, Black and Result tags"),
    ('[White "A"]\n[Black "B"]\n[Result "1-0"]\n\n1. e4 0-1\n',
     "Result tag '1-0' disagrees with the termination marker '0-1'"),
    ('[White "A"]\n[Black "B"]\n[Result "1-0"]\n[Round "1\n\n1. e4 1-0\n',
     "unterminated tag pair on line 11"),  # line 4 of the bad game, after 7 lines
    ('[White "A"]\n[Black "B"]\n[Result "1-0"]\n\n1. e4 {never closed 1-0\n',
     "unterminated comment on line 12"),
])
def test_one_problem_per_bad_game_and_the_next_is_read(text, message):
    good = '\n[White "Z"]\n[Black "Y"]\n[Result "1/2-1/2"]\n\n1. e4 1/2-1/2\n'
    games, problems = read_pgn(good + "\n" + text + "\n" + good)
    assert problems == [PgnProblem(2, message)]
    assert [g.number for g in games] == [1, 3] and games[1].white == "Z"


def test_game_starts_at_the_next_tag_section_even_without_blank_line():
    text = ('[White "A"]\n[Black "B"]\n[Result "1-0"]\n1. e4 1-0\n'
            '[White "C"]\n[Black "D"]\n[Result "0-1"]\n1. d4 0-1')
    games, problems = read_pgn(text)
    assert [(g.white, g.result) for g in games] == [("A", "1-0"), ("C", "0-1")] and not problems


def test_format_pgn_round_trip():
    headers = {"White": 'Tabula "net" v2', "Black": "C:\\engines\\rand", "Date": "2024.05.01",
               "Variant": "chess", "Event": "Gauntlet"}
    moves = ["e4", "e5", "Nf3", "Nc6", "Bb5", "a6"] * 12
    text = format_pgn(headers, moves, "1/2-1/2")
    lines = text.splitlines()
    assert lines[:8] == ['[Event "Gauntlet"]', '[Site "?"]', '[Date "2024.05.01"]', '[Round "?"]',
                         '[White "Tabula \\"net\\" v2"]', '[Black "C:\\\\engines\\\\rand"]',
                         '[Result "1/2-1/2"]', '[Variant "chess"]']
    assert lines[8] == "" and text.endswith("1/2-1/2\n\n")
    body = text.split("\n\n")[1].splitlines()
    assert body[0].startswith("1. e4 e5 2. Nf3 Nc6 3. Bb5 a6 4. e4")
    assert all(len(line) <= 80 for line in body) and len(body) > 1
    assert not any(line.endswith(".") for line in body)  # a move number stays with its move
    assert " ".join(body).split()[-4:] == ["36.", "Bb5", "a6", "1/2-1/2"]
    games, problems = read_pgn(text + format_pgn({}, [], "*"))
    assert problems == [] and len(games) == 2
    assert games[0].headers == {**headers, "Site": "?", "Round": "?", "Result": "1/2-1/2"}
    assert games[1].white == "?" and games[1].result == "*" and games[1].movetext == "*"


def test_format_pgn_rejects_bad_result():
    with pytest.raises(ValueError):
        format_pgn({}, ["e4"], "2-0")


@pytest.mark.parametrize("size, vertex, sgf", [
    (19, "A1", "as"), (19, "T19", "sa"), (19, "J10", "ij"), (19, "D4", "dp"),
    (19, "Q16", "pd"), (19, "H8", "hl"), (9, "J9", "ia"), (9, "A9", "aa"),
    (9, "E5", "ee"), (9, "pass", ""), (13, "n1", "mm"),
])
def test_gtp_to_sgf(size, vertex, sgf):
    # SGF column = a + index with I skipped in GTP; SGF row = a + (size - row).
    assert gtp_to_sgf(vertex, size) == sgf


@pytest.mark.parametrize("vertex", ["I5", "K9", "A10", "A0", "Z1", "", "D"])
def test_gtp_to_sgf_rejects(vertex):
    with pytest.raises(ValueError):
        gtp_to_sgf(vertex, 9)


def test_format_sgf():
    text = format_sgf(19, [("B", "Q16"), ("W", "D4"), ("B", "pass")], "W+0.5",
                      {"PB": "net]v1\\x", "KM": "7.5"})
    assert text == "(;FF[4]GM[1]SZ[19]PB[net\\]v1\\\\x]KM[7.5]RE[W+0.5]\n;B[pd]\n;W[dp]\n;B[])\n"
    with pytest.raises(ValueError):
        format_sgf(9, [("X", "A1")], "?")


def test_format_move_list():
    text = format_move_list(["d4", "c3", "e5"], "1-0", {"Game": "hex", "Note": 'a "b"'})
    assert text == '[Game "hex"]\n[Note "a \\"b\\""]\n\nd4 c3 e5 1-0\n'
    assert format_move_list([], "*", {}) == "*\n"
