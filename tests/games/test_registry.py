"""The game registry."""

import subprocess
import sys

import pytest

import games
from games import GameError, GameInfo, get_game, list_games, registry


def test_known_games_and_facts():
    ttt, c4 = get_game("tictactoe"), get_game("connect4")
    assert get_game("connect4") is c4
    assert ttt.info == GameInfo("tictactoe", 9, (3, 3, 3), 2, 9, num_symmetries=8,
                                has_draws=True)
    assert c4.info == GameInfo("connect4", 7, (3, 6, 7), 2, 42, num_symmetries=2,
                               has_draws=True)
    assert {info.name for info in list_games()} == {"tictactoe", "connect4", "go9", "go13", "go19",
                                                    "chess"}
    assert games.game_names() == ["atari/<name>", "chess", "connect4", "go/<name>", "go13",
                                  "go19", "go9", "gym/<name>", "spiel/<name>", "tictactoe"]
    assert get_game("go/7").info.observation_shape == (17, 7, 7)


@pytest.mark.parametrize("name, suggestion", [
    ("conect4", "connect4"), ("Connect4", "connect4"), ("tic-tac-toe", "tictactoe"),
])
def test_unknown_name_suggests(name, suggestion):
    with pytest.raises(GameError, match=f"did you mean '{suggestion}'") as err:
        get_game(name)
    assert ("known games: atari/<name>, chess, connect4, go/<name>, go13, go19, go9, "
            "gym/<name>, spiel/<name>, tictactoe" in str(err.value))


def test_unknown_name_without_close_match():
    with pytest.raises(GameError) as err:
        get_game("zzzzzz")
    assert "unknown game 'zzzzzz'" in str(err.value) and "did you mean" not in str(err.value)


def test_families_and_lazy_registration(monkeypatch):
    monkeypatch.setattr(registry, "_GAMES", dict(registry._GAMES))
    monkeypatch.setattr(registry, "_LOADED", {})
    made = []

    def make(env_name):
        made.append(env_name)
        return get_game("tictactoe")

    games.register_game("fake/", make)
    games.register_game("lazy", "games.connect4:ConnectFour")
    assert "fake/<name>" in games.game_names() and "lazy" in games.game_names()
    assert made == []
    get_game("fake/Breakout")
    assert made == ["Breakout"]
    assert get_game("lazy").info.name == "connect4"
    for bad in ("fake/", "fake", "nofamily/Breakout"):
        with pytest.raises(GameError, match="unknown game"):
            get_game(bad)
    with pytest.raises(ValueError, match="already registered"):
        games.register_game("lazy", "games.tictactoe:TicTacToe")


def test_import_is_light():
    code = ("import sys, games; heavy = {'pyspiel', 'numba', 'torch'} & set(sys.modules); "
            "print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_public_names():
    assert set(games.__all__) >= {"GameInfo", "State", "SearchBatch", "Game", "GameError",
                                  "ObjectBatch", "get_game", "list_games"}
    for name in games.__all__:
        assert hasattr(games, name)
