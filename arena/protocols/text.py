"""The plain text prompt: a person plays a game against a Player.

`TextSession.handle(line) -> str` is pure over a table of commands and never
raises; `run_text` is the tiny stdio loop around it. Anything that is not a
command is read as a move. Whose turn it is comes from the position: in a game
where a player can move twice in a row (GameInfo.alternating False) the person
types again, or the engine plays several moves, until the turn passes.

    > 4
    you play 4
    engine plays 4 (value -0.12 for the engine)
    <board>
"""

from __future__ import annotations

import sys
from typing import Callable, TextIO

from arena.protocols.lines import LineTooLong, read_line
from games import GameError

HELP = """commands:
  <move>          play a move (e.g. {example})
  moves           list the legal moves
  board           show the board
  undo            take back your last move and the engine's reply
  help            this text
  quit, resign    end the game"""
HINT = "(type 'help' for commands)"


class TextSession:
    """One game between a person and `player`, driven line by line.

    Args:
      game: the Game.
      player: an object with `analyze(states) -> [Analysis]` (engine.player.Player).
      engine_first: the engine plays the first move.
    Attributes:
      done: True once the game is over or the person quit; the loop stops then.
    """

    def __init__(self, game, player, engine_first: bool = False):
        self.game = game
        self.player = player
        self.engine_side = 0 if engine_first else 1
        self.state = game.new_initial_state()
        self.done = False
        self._commands: dict[str, Callable[[], str]] = {
            "help": self._help, "?": self._help,
            "quit": self._quit, "exit": self._quit, "resign": self._resign,
            "board": self._board, "show": self._board,
            "moves": self._moves, "legal": self._moves,
            "undo": self._undo,
        }

    def start(self) -> str:
        """The greeting, and the engine's first move if it starts."""
        you = "second" if self.engine_side == 0 else "first"
        lines = [f"{self.game.info.name}: you play {you}; type a move, or 'help'."]
        if self.state.to_play() == self.engine_side:
            lines.append(self._engine_moves())
        else:
            lines.append(str(self.state))
        return "\n".join(lines)

    def handle(self, line: str) -> str:
        """Answers one input line (a command or a move). Never raises."""
        try:
            return self._dispatch(line.strip())
        except Exception as e:  # The prompt must survive anything the engine throws.
            return f"error: {type(e).__name__}: {e}"

    def finish(self) -> str:
        """What to print when input ends (EOF) before the game is over."""
        if self.done:
            return ""
        self.done = True
        return "input ended; game abandoned"

    def _dispatch(self, text: str) -> str:
        if self.done:
            return "the game is over"
        if not text:
            return ""
        command = self._commands.get(text.lower())
        if command is not None:
            return command()
        return self._user_move(text)

    def _user_move(self, text: str) -> str:
        try:
            action = self.state.text_to_action(text)
        except GameError as e:
            return f"{_one_line(e)} {HINT}"
        move_text = self.state.action_to_text(action)
        self.state.apply(action)
        lines = [f"you play {move_text}"]
        if self.state.is_terminal():
            lines += [str(self.state), self._result()]
        elif self.state.to_play() == self.engine_side:
            lines.append(self._engine_moves())
        else:
            lines += [str(self.state), "your move again"]
        return "\n".join(lines)

    def _engine_moves(self) -> str:
        """The engine's moves until the person is to move or the game is over."""
        lines = []
        while True:
            analysis = self.player.analyze([self.state])[0]
            move_text = self.state.action_to_text(analysis.action)
            self.state.apply(analysis.action)
            lines += [f"engine plays {move_text} (value {analysis.value:+.2f} for the engine)",
                      str(self.state)]
            if self.state.is_terminal():
                lines.append(self._result())
                break
            if self.state.to_play() != self.engine_side:
                break
        return "\n".join(lines)

    def _result(self) -> str:
        self.done = True
        returns = self.state.returns()
        you = 1 - self.engine_side
        if returns[you] > returns[self.engine_side]:
            return "game over: you win"
        if returns[you] < returns[self.engine_side]:
            return "game over: the engine wins"
        return "game over: draw"

    def _help(self) -> str:
        legal = [self.state.action_to_text(a) for a in _legal(self.state)]
        return HELP.format(example=legal[0] if legal else "-")

    def _quit(self) -> str:
        self.done = True
        return "you quit; game abandoned"

    def _resign(self) -> str:
        self.done = True
        return "you resign; game over: the engine wins"

    def _board(self) -> str:
        return str(self.state)

    def _moves(self) -> str:
        return "legal moves: " + " ".join(self.state.action_to_text(a)
                                          for a in _legal(self.state))

    def _undo(self) -> str:
        history = self.state.history()
        # Drop back to the last position before the end where it was the person's turn.
        state, keep = self.game.new_initial_state(), -1
        for i, action in enumerate(history):
            if state.to_play() != self.engine_side:
                keep = i
            state.apply(action)
        if keep < 0:
            return "nothing to undo"
        state = self.game.new_initial_state()
        for action in history[:keep]:
            state.apply(action)
        self.state = state
        return f"took back {len(history) - keep} move(s)\n{self.state}"


def _legal(state) -> list[int]:
    return [int(a) for a in state.legal_mask().nonzero()[0]]


def _one_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def run_text(session: TextSession, stdin: TextIO | None = None,
             stdout: TextIO | None = None) -> int:
    """Reads lines until the game ends, 'quit' or EOF; returns exit code 0. Blocks.

    stdin and stdout default to sys.stdin and sys.stdout at call time.
    """
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    prompt = "> " if stdin.isatty() else ""
    stdout.write(session.start() + "\n")
    while not session.done:
        stdout.write(prompt)
        stdout.flush()
        line = read_line(stdin)
        if line is None:
            stdout.write(session.finish() + "\n")
            break
        answer = line.reason() if isinstance(line, LineTooLong) else session.handle(line)
        if answer:
            stdout.write(answer + "\n")
    stdout.flush()
    return 0
