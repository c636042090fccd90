"""The JSON-lines analysis engine (`tabula analyze`), in the spirit of KataGo's.

One query per input line, one answer per query, in input order:

    {"id": "a", "moves": [3, "4"], "sims": 200}
    {"id": "a", "move": "5", "action": 4, "value": 0.12, "raw_value": 0.08,
     "to_play": 0, "visits": {"1": 3, ...}, "prior": {...}, "q": {...}}

`moves` are action ids (ints, open_spiel numbering) or move texts (strings),
played from the initial position; `sims` is optional. `visits` and `prior`
cover every legal move, `q` the visited ones. A bad query gets
`{"id": ..., "error": "..."}` (id null when no valid id can be read) and the
engine goes on.

Everything a query can make the engine do is bounded: a line is at most
MAX_LINE_BYTES (a longer one is skipped to its end and answered with an
error), JSON nesting deeper than Python can parse is an error, not a crash,
`moves` holds at most MAX_MOVES entries, an id is a string of at most
MAX_ID_CHARS characters or an integer of at most 64 bits, `sims` is at most
`max_sims(num_actions)` (one tree within MAX_TREE_BYTES), and a batch is
split so that its trees together stay within MAX_TREE_BYTES.

`AnalysisEngine.answer(lines)` is pure and never raises: queries given
together are searched as one batch (one `Player.analyze` call per distinct
`sims`). `run_analysis` is the stdio loop: a thread reads stdin (bytes, so
bad UTF-8 is an error answer, not a dead reader) into a queue, the loop
answers whatever has arrived (up to `max_batch` lines) as one batch.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, TextIO

from arena.protocols.lines import MAX_LINE_BYTES, LineTooLong, read_line
from engine.tree import tree_bytes
from games import GameError

QUERY_KEYS = ("id", "moves", "sims")
MAX_SIMS = 100_000
MAX_BATCH = 256
MAX_MOVES = 10_000
"""Most entries of `moves` (longer than any game the registry has: go25 ends at 1,875)."""
MAX_ID_CHARS = 256
MAX_ID = 2**63 - 1
"""Ids are strings of at most MAX_ID_CHARS characters or integers within +-MAX_ID."""
MAX_TREE_BYTES = 256 * 2**20
"""Search-tree memory of one query's tree, and of one batch's trees together."""
_QUOTE = 80
"""Characters of a bad value quoted back in an error."""
_EOF = object()


class QueryError(ValueError):
    """A query the engine cannot answer; the message goes back to the client."""


@dataclass
class Query:
    """A parsed, valid query."""

    id: Any
    state: Any
    sims: int


def max_sims(num_actions: int) -> int:
    """Most simulations of one query: MAX_SIMS, or fewer when one tree would pass
    MAX_TREE_BYTES (chess, 4,674 actions: about 7,000)."""
    per_node = tree_bytes(1, 2, num_actions) - tree_bytes(1, 1, num_actions)
    return max(1, min(MAX_SIMS, MAX_TREE_BYTES // per_node - 1))


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _QUOTE else text[:_QUOTE] + "..."


def valid_id(value: Any) -> bool:
    """Whether `value` is an id the engine echoes: a short string or a 64-bit integer."""
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return len(value) <= MAX_ID_CHARS
    return isinstance(value, int) and -MAX_ID <= value <= MAX_ID


def _reject(data: Any, message: str) -> dict:
    """The error answer; the id only when it is one the engine would accept."""
    qid = data.get("id") if isinstance(data, dict) else None
    return {"id": qid if valid_id(qid) else None, "error": message}


def _load(line: str | LineTooLong) -> Any:
    """The JSON value of one line; QueryError for anything that is not one."""
    if isinstance(line, LineTooLong):
        raise QueryError(line.reason())
    if len(line) > MAX_LINE_BYTES:
        raise QueryError(f"line of {len(line)} characters; at most {MAX_LINE_BYTES}")
    try:
        return json.loads(line)
    except RecursionError:
        raise QueryError("not JSON this engine reads: nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, and int() of over 4,300 digits
        raise QueryError(f"not JSON: {str(e)[:200]}") from None


class AnalysisEngine:
    """Answers batches of JSON query lines with a Player.

    Args:
      game: the Game.
      player: an object with `analyze(states, num_simulations) -> [Analysis]`.
      default_sims: simulations when a query gives none.
    """

    def __init__(self, game, player, default_sims: int):
        self.game = game
        self.player = player
        self.max_sims = max_sims(game.info.num_actions)
        self.default_sims = min(int(default_sims), self.max_sims)

    def parse(self, line: str | LineTooLong) -> Query:
        """Parses one line into a Query; raises QueryError with the reason."""
        data = _load(line)
        if not isinstance(data, dict):
            raise QueryError("a query must be a JSON object")
        unknown = sorted(set(data) - set(QUERY_KEYS))
        if unknown:
            shown = ", ".join(_quote(k) for k in unknown[:5]) + (", ..." if len(unknown) > 5
                                                                 else "")
            raise QueryError(f"unknown key(s) [{shown}]; valid keys: {list(QUERY_KEYS)}")
        if "id" not in data:
            raise QueryError("missing 'id'")
        if not valid_id(data["id"]):
            raise QueryError(f"'id' must be a string of at most {MAX_ID_CHARS} characters "
                             f"or an integer within +-(2^63-1), got {_quote(data['id'])}")
        if "moves" not in data:
            raise QueryError("missing 'moves' (use [] for the initial position)")
        sims = data.get("sims", self.default_sims)
        if isinstance(sims, bool) or not isinstance(sims, int) or not 1 <= sims <= self.max_sims:
            raise QueryError(f"'sims' must be an integer in 1..{self.max_sims}, "
                             f"got {_quote(sims)}")
        state = self._position(data["moves"])
        return Query(data["id"], state, sims)

    def _position(self, moves: Any):
        if not isinstance(moves, list):
            raise QueryError("'moves' must be a list of action ids or move texts")
        if len(moves) > MAX_MOVES:
            raise QueryError(f"'moves' has {len(moves)} entries; at most {MAX_MOVES}")
        state = self.game.new_initial_state()
        for i, move in enumerate(moves):
            try:
                if isinstance(move, bool) or not isinstance(move, (int, str)):
                    raise GameError(f"must be an int or a string, got {_quote(move)}")
                if state.is_terminal():
                    raise GameError("the game is already over")
                action = move if isinstance(move, int) else state.text_to_action(move)
                state.apply(action)
            except GameError as e:
                raise QueryError(f"moves[{i}]: {str(e)[:200]}") from None
        if state.is_terminal():
            raise QueryError("the game is over after these moves; nothing to analyse")
        return state

    def answer(self, lines: list[str | LineTooLong]) -> list[str]:
        """One JSON answer line per input line, in order. Never raises."""
        results: list[dict | None] = [None] * len(lines)
        groups: dict[int, list[tuple[int, Query]]] = {}
        for i, line in enumerate(lines):
            try:
                query = self.parse(line)
            except QueryError as e:
                results[i] = _reject(_try_json(line), str(e))
                continue
            except Exception as e:  # a game's own bug: this query fails, the batch goes on
                results[i] = _reject(_try_json(line), f"bad query: {type(e).__name__}: "
                                                      f"{str(e)[:200]}")
                continue
            groups.setdefault(query.sims, []).append((i, query))
        for sims, items in groups.items():
            per_tree = tree_bytes(1, sims + 1, self.game.info.num_actions)
            size = max(1, MAX_TREE_BYTES // per_tree)
            for start in range(0, len(items), size):
                self._search(sims, items[start:start + size], results)
        return [_dump(r) for r in results]

    def _search(self, sims: int, items: list[tuple[int, Query]], results: list) -> None:
        """Searches one group as a batch and fills `results` (errors included)."""
        try:
            analyses = self.player.analyze([q.state for _, q in items], num_simulations=sims)
            for (i, query), analysis in zip(items, analyses):
                results[i] = _format(query, analysis)
        except Exception as e:  # One failing search must not kill the engine.
            for i, query in items:
                results[i] = {"id": query.id, "error": f"search failed: {str(e)[:200]}"}


def _dump(result: dict) -> str:
    try:
        return json.dumps(result, allow_nan=False)
    except ValueError:  # a NaN value from a broken network: say so, keep the id
        return json.dumps({"id": result.get("id"), "error": "the search returned NaN"})


def _try_json(line: str | LineTooLong) -> Any:
    try:
        return _load(line)
    except QueryError:
        return None


def _num(x: float) -> float:
    return round(float(x), 4)


def _format(query: Query, analysis) -> dict:
    state = query.state
    legal = [int(a) for a in state.legal_mask().nonzero()[0]]
    text = {a: state.action_to_text(a) for a in legal}
    q = {text[a]: _num(analysis.q[a]) for a in legal
         if analysis.visits[a] > 0 and analysis.q[a] == analysis.q[a]}
    return {
        "id": query.id,
        "move": state.action_to_text(analysis.action),
        "action": int(analysis.action),
        "value": _num(analysis.value),
        "raw_value": _num(analysis.raw_value),
        "to_play": int(state.to_play()),
        "visits": {text[a]: int(analysis.visits[a]) for a in legal},
        "prior": {text[a]: _num(analysis.prior[a]) for a in legal},
        "q": q,
    }


def _reader(stdin: BinaryIO | TextIO, lines: queue.Queue) -> None:
    """Puts each line of `stdin` (str, or LineTooLong) on `lines`, then _EOF. Never raises."""
    try:
        while (raw := read_line(stdin)) is not None:
            lines.put(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
    except (OSError, ValueError) as e:  # a closed or unreadable stdin ends the input
        print(f"tabula analyze: input ended: {e}", file=sys.stderr)
    finally:
        lines.put(_EOF)


def run_analysis(engine: AnalysisEngine, stdin: TextIO | BinaryIO | None = None,
                 stdout: TextIO | None = None, max_batch: int = MAX_BATCH) -> int:
    """Answers queries until EOF; returns exit code 0. Blocks.

    Blank lines are ignored. Answers are flushed after each batch. stdin and
    stdout default to sys.stdin and sys.stdout at call time; stdin is read as
    bytes where it has a buffer (undecodable bytes become U+FFFD, so such a
    query is answered with an error like any other bad line).
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    source = getattr(stdin, "buffer", stdin)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(source, lines), daemon=True).start()
    eof = False
    while not eof:
        batch = [lines.get()]
        while len(batch) < max_batch:
            try:
                batch.append(lines.get_nowait())
            except queue.Empty:
                break
        if batch[-1] is _EOF:
            eof = True
            batch.pop()
        batch = [line for line in batch if isinstance(line, LineTooLong) or line.strip()]
        if batch:
            try:
                stdout.write("".join(a + "\n" for a in engine.answer(batch)))
                stdout.flush()
            except (BrokenPipeError, ValueError):  # nobody reads the answers any more
                return 0
    return 0
