"""The JSON-lines analysis engine (`tabula analyze`), in the spirit of KataGo's.

One query per input line, one answer per query, in input order:

    {"id": "a", "moves": [3, "4"], "sims": 200}
    {"id": "a", "move": "5", "action": 4, "value": 0.12, "raw_value": 0.08,
     "to_play": 0, "visits": {"1": 3, ...}, "prior": {...}, "q": {...}}

`moves` are action ids (ints, open_spiel numbering) or move texts (strings),
played from the initial position; `sims` is optional. `visits` and `prior`
cover every legal move, `q` the visited ones. A bad query gets
`{"id": ..., "error": "..."}` and the engine goes on.

`AnalysisEngine.answer(lines)` is pure and never raises: queries given
together are searched as one batch (one `Player.analyze` call per distinct
`sims`). `run_analysis` is the stdio loop: a thread reads stdin into a queue,
the loop answers whatever has arrived (up to `max_batch` lines) as one batch.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
from dataclasses import dataclass
from typing import Any, TextIO

from games import GameError

QUERY_KEYS = ("id", "moves", "sims")
MAX_SIMS = 100_000
MAX_BATCH = 256
_EOF = object()


class QueryError(ValueError):
    """A query the engine cannot answer; the message goes back to the client."""


@dataclass
class Query:
    """A parsed, valid query."""

    id: Any
    state: Any
    sims: int


def _reject(data: dict, message: str) -> dict:
    return {"id": data.get("id") if isinstance(data, dict) else None, "error": message}


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
        self.default_sims = int(default_sims)

    def parse(self, line: str) -> Query:
        """Parses one line into a Query; raises QueryError with the reason."""
        try:
            data = json.loads(line)
        except ValueError as e:
            raise QueryError(f"not JSON: {e}") from None
        if not isinstance(data, dict):
            raise QueryError("a query must be a JSON object")
        unknown = sorted(set(data) - set(QUERY_KEYS))
        if unknown:
            raise QueryError(f"unknown key(s) {unknown}; valid keys: {list(QUERY_KEYS)}")
        if "id" not in data:
            raise QueryError("missing 'id'")
        if not isinstance(data["id"], (str, int)) or isinstance(data["id"], bool):
            raise QueryError("'id' must be a string or an integer")
        if "moves" not in data:
            raise QueryError("missing 'moves' (use [] for the initial position)")
        sims = data.get("sims", self.default_sims)
        if isinstance(sims, bool) or not isinstance(sims, int) or not 1 <= sims <= MAX_SIMS:
            raise QueryError(f"'sims' must be an integer in 1..{MAX_SIMS}, got {sims!r}")
        state = self._position(data["moves"])
        return Query(data["id"], state, sims)

    def _position(self, moves: Any):
        if not isinstance(moves, list):
            raise QueryError("'moves' must be a list of action ids or move texts")
        state = self.game.new_initial_state()
        for i, move in enumerate(moves):
            try:
                if isinstance(move, bool) or not isinstance(move, (int, str)):
                    raise GameError(f"must be an int or a string, got {move!r}")
                action = move if isinstance(move, int) else state.text_to_action(move)
                state.apply(action)
            except GameError as e:
                raise QueryError(f"moves[{i}]: {e}") from None
        if state.is_terminal():
            raise QueryError("the game is over after these moves; nothing to analyse")
        return state

    def answer(self, lines: list[str]) -> list[str]:
        """One JSON answer line per input line, in order. Never raises."""
        results: list[dict | None] = [None] * len(lines)
        groups: dict[int, list[tuple[int, Query]]] = {}
        for i, line in enumerate(lines):
            try:
                query = self.parse(line)
            except QueryError as e:
                results[i] = _reject(_try_json(line), str(e))
                continue
            groups.setdefault(query.sims, []).append((i, query))
        for sims, items in groups.items():
            self._search(sims, items, results)
        return [json.dumps(r, allow_nan=False) for r in results]

    def _search(self, sims: int, items: list[tuple[int, Query]], results: list) -> None:
        """Searches one group as a batch and fills `results` (errors included)."""
        try:
            analyses = self.player.analyze([q.state for _, q in items], num_simulations=sims)
            for (i, query), analysis in zip(items, analyses):
                results[i] = _format(query, analysis)
        except Exception as e:  # One failing search must not kill the engine.
            for i, query in items:
                results[i] = {"id": query.id, "error": f"search failed: {e}"}


def _try_json(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
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


def _reader(stdin: TextIO, lines: queue.Queue) -> None:
    for line in stdin:
        lines.put(line)
    lines.put(_EOF)


def run_analysis(engine: AnalysisEngine, stdin: TextIO | None = None,
                 stdout: TextIO | None = None, max_batch: int = MAX_BATCH) -> int:
    """Answers queries until EOF; returns exit code 0. Blocks.

    Blank lines are ignored. Answers are flushed after each batch. stdin and
    stdout default to sys.stdin and sys.stdout at call time.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(stdin, lines), daemon=True).start()
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
        batch = [line for line in batch if line.strip()]
        if batch:
            stdout.write("".join(a + "\n" for a in engine.answer(batch)))
            stdout.flush()
    return 0
