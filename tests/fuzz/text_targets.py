"""The text-prompt fuzz target: sessions of lines to TextSession.handle, four games."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import strategies as st

from tests.fuzz import strategies as S
from tests.fuzz.base import Target, expect

TEXT_GAMES = {"tictactoe": ["a1", "b2", "c3", "a3", "zz", "0", "8", "9", "A1"],
              "connect4": ["1", "4", "7", "8", "0", "-1", "3"],
              "chess": ["e2e4", "e7e5", "Nf3", "O-O", "e2e5", "a7a8q", "d4", "0"],
              "go9": ["D4", "E5", "pass", "J9", "Z9", "I5", "80", "81", "d4"]}
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
REJECTED = "(type 'help' for commands)"


def text_examples():
    return st.sampled_from(sorted(TEXT_GAMES)).flatmap(lambda name: st.tuples(
        st.just(name), st.booleans(),
        S.sessions(S.text_corpus(TEXT_GAMES[name]), TEXT_GAMES[name])))


class TextTarget(Target):
    """TextSession.handle over sessions of lines against an instant scripted player."""

    name = "text"
    inputs_strategy = staticmethod(text_examples)

    def open(self, workdir: Path) -> None:
        from games import get_game

        self.games = {name: get_game(name) for name in TEXT_GAMES}

    def new_session(self, name: str, engine_first: bool):
        from arena.protocols.text import TextSession
        from tests.arena.fakes import ScriptedPlayer

        session = TextSession(self.games[name], ScriptedPlayer(), engine_first)
        session.start()
        return session

    def check(self, example: tuple[str, bool, list[str]]) -> None:
        name, engine_first, lines = example
        session = self.new_session(name, engine_first)
        for line in lines:
            self.inputs += 1
            was_done = session.done
            before = tuple(session.state.history())
            answer = session.handle(line)
            given = (name, line)
            expect(isinstance(answer, str), "not a string", given, answer)
            expect(not answer.startswith("error:") and "Traceback" not in answer,
                   "an exception reached the prompt", given, answer)
            expect(not _TEXT_CONTROL.search(answer), "control characters", given, answer)
            if was_done:
                expect(answer == "the game is over", "a finished game went on", given, answer)
                session = self.new_session(name, engine_first)
            elif not line.strip():
                expect(answer == "", "an answer to a blank line", given, answer)
            elif answer.endswith(REJECTED):
                expect("\n" not in answer, "a rejection of several lines", given, answer)
                expect(tuple(session.state.history()) == before and not session.done,
                       "a rejected move changed the game", given, answer)
