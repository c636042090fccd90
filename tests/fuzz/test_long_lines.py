"""Every front end reads bounded lines: a line over arena.protocols.lines.MAX_LINE_BYTES (here 3 MiB
without a newline, then one) is answered as an error and dropped, and the next command is
answered as usual. Unbounded, a client could make an engine hold gigabytes."""

from __future__ import annotations

import io
import json

import pytest

from arena.protocols.lines import MAX_LINE_BYTES, LineTooLong, read_line
from tests.fuzz.processes import EngineProcess

HUGE = b"x" * (3 * MAX_LINE_BYTES)


def test_read_line_bounds_and_resynchronises():
    stream = io.BytesIO(b"short\n" + b"y" * (MAX_LINE_BYTES + 5) + b"\nnext\nlast")
    assert read_line(stream) == b"short\n"
    assert read_line(stream) == LineTooLong(MAX_LINE_BYTES + 6)
    assert read_line(stream) == b"next\n"
    assert read_line(stream) == b"last"  # the final line needs no newline
    assert read_line(stream) is None
    exact = io.StringIO("z" * MAX_LINE_BYTES + "\n")  # at the limit, with its newline
    assert read_line(exact) == "z" * MAX_LINE_BYTES + "\n"


@pytest.mark.parametrize("args, after, answer", [
    (("gtp", "--sims", "2"), "1 name", lambda out: out == "=1 Tabula"),
    (("uci", "--nodes", "2"), "isready", lambda out: out == "readyok"),
    (("analyze", "--game", "tictactoe", "--sims", "2"), '{"id": 7, "moves": []}',
     lambda out: json.loads(out)["id"] == 7 and "move" in json.loads(out)),
    (("play", "--game", "tictactoe"), "board", lambda out: "a" in out),
])
def test_an_overlong_line_is_answered_and_the_engine_goes_on(tmp_path, args, after, answer):
    engine = EngineProcess(*args, cwd=tmp_path)
    engine.send(HUGE)
    first = engine.until(lambda out: "3145729 bytes ignored; at most 1048576" in out)
    engine.send(after)
    assert answer(engine.until(answer)[-1])
    if args[0] == "uci":
        engine.send("quit")
    engine.close()
    assert len(first[-1]) < 200  # the answer does not echo the line
