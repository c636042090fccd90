"""A user's own game: the guide's Hexapawn loaded by module path, entry points, the
self-check at load (games/check.py) and its one-line messages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from games import GameError, check_game, get_game, is_user_game, registry
from tabula import cli

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "docs" / "examples" / "hexapawn.py"
GUIDE = REPO / "docs" / "NEW_GAME.md"
TINY_TRAIN = ["--set", "run.actors=0", "--set", "network.blocks=1", "--set", "network.channels=8",
              "--set", "network.value_hidden=8", "--set", "search.num_simulations=4",
              "--set", "search.max_num_considered_actions=4",
              "--set", "selfplay.parallel_games=8", "--set", "replay.min_positions=16",
              "--set", "learner.batch_size=16", "--set", "learner.max_steps_per_iteration=2",
              "--set", "run.checkpoint_every=1"]


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    """Games loaded by one test are not cached for the next."""
    monkeypatch.setattr(registry, "_LOADED", {})


def write_variant(directory: Path, module: str, *replacements: tuple[str, str]) -> str:
    """Writes the guide's file as `module`.py with each (old, new) replaced; returns
    'module:Hexapawn'."""
    text = EXAMPLE.read_text()
    for old, new in replacements:
        assert text.count(old) == 1, old  # the planted bug must land
        text = text.replace(old, new)
    (directory / f"{module}.py").write_text(text)
    return f"{module}:Hexapawn"


def tabula_in(cwd: Path, *args, stdin: str = "", pythonpath: Path | None = None):
    """The real command as a user runs it: from `cwd`, with the repository (and
    `pythonpath`) on PYTHONPATH."""
    paths = [str(REPO)] + ([str(pythonpath)] if pythonpath else [])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run([sys.executable, "-m", "tabula", *map(str, args)], input=stdin,
                          capture_output=True, text=True, timeout=300, cwd=cwd, env=env)


def one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tabula: error: "), proc.stderr
    return lines[0]


# The guide's game, end to end, as a user runs it ----------------------------------

def test_guide_game_trains_plays_and_is_rated(tmp_path):
    mine, work = tmp_path / "mygame", tmp_path / "work"
    mine.mkdir()
    work.mkdir()
    shutil.copy(EXAMPLE, mine / "hexapawn.py")
    proc = tabula_in(work, "train", "--game", "hexapawn:Hexapawn", "--run", "runs/hexapawn",
                     "--iterations", "2", "--no-progress", *TINY_TRAIN, pythonpath=mine)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("trained 2 iterations")
    found = re.search(r"tabula play --game hexapawn:Hexapawn --checkpoint (\S+)", proc.stdout)
    assert found, proc.stdout
    checkpoint = found.group(1)

    # The checkpoint names its game: play finds the module again, without --game.
    proc = tabula_in(work, "play", "--checkpoint", checkpoint, "--sims", "4",
                     stdin="help\nzz\nb1-b2\nmoves\nundo\nquit\n", pythonpath=mine)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0] == "hexapawn:Hexapawn: you play first; type a move, or 'help'."
    assert out[1:6] == ["3  b b b", "2  . . .", "1  w w w", "   a b c", "white to play"]
    assert "not a legal move: 'zz' (legal: a1-a2 b1-b2 c1-c2) (type 'help' for commands)" in out
    assert "you play b1-b2" in out
    assert any(line.startswith("engine plays ") for line in out)
    assert "took back 2 move(s)" in out
    assert out[-1] == "you quit; game abandoned"

    proc = tabula_in(work, "arena", "runs/hexapawn", "--games", "2", "--sims", "4",
                     "--opponent", "random", "--no-progress", pythonpath=mine)
    assert proc.returncode == 0, proc.stderr
    assert "arena: 6 games played, 3 pairings, 3 players rated" in proc.stdout
    assert (work / "runs" / "hexapawn" / "elo.csv").exists()

    # open_spiel's MCTS bot needs an open_spiel game: refused on one line.
    line = one_error_line(tabula_in(work, "eval", "--checkpoint", checkpoint, "--vs", "mcts",
                                    pythonpath=mine))
    assert "hexapawn:Hexapawn is not an open_spiel game" in line

    # Without the module on the path, the checkpoint's game cannot be found: one line.
    line = one_error_line(tabula_in(work, "play", "--checkpoint", checkpoint))
    assert "no module named 'hexapawn'" in line


def test_module_in_the_current_directory_is_found(tmp_path, monkeypatch):
    # A console script does not put the current directory on sys.path; the loader does.
    write_variant(tmp_path, "hexapawn_here")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    game = get_game("hexapawn_here:Hexapawn")
    assert game.info.name == "hexapawn_here:Hexapawn"
    assert get_game("hexapawn_here:Hexapawn") is game
    assert str(tmp_path) in sys.path


@pytest.mark.parametrize("attribute", ["Hexapawn", "INSTANCE", "make"])
def test_attribute_is_a_class_an_instance_or_a_factory(tmp_path, monkeypatch, attribute):
    module = f"hexapawn_attr_{attribute.lower()}"
    (tmp_path / f"{module}.py").write_text(
        EXAMPLE.read_text() + "\n\nINSTANCE = Hexapawn()\n\n\ndef make():\n    return Hexapawn()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    game = get_game(f"{module}:{attribute}")
    assert game.info.name == f"{module}:{attribute}" and game.info.num_actions == 27


def test_user_games_get_the_small_board_preset():
    from selfplay.config import TrainConfig, preset

    assert is_user_game("hexapawn:Hexapawn") and not is_user_game("tictactoe")
    config = preset("hexapawn:Hexapawn")
    assert (config.network.blocks, config.network.channels) == (2, 32)
    assert config.run.max_minutes == 5.0 and config.game == "hexapawn:Hexapawn"
    assert preset("go13").network == TrainConfig().network  # built-in games: unchanged


# Entry points -------------------------------------------------------------------------

def make_distribution(root: Path) -> None:
    """An installed distribution declaring two 'tabula.games' entry points."""
    shutil.copy(EXAMPLE, root / "hexapawn.py")
    info = root / "hexapawn_game-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: hexapawn-game\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[tabula.games]\nhexapawn = hexapawn:Hexapawn\ntictactoe = hexapawn:Hexapawn\n")


def test_entry_point_games(tmp_path, monkeypatch):
    make_distribution(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "hexapawn" in registry.game_names()
    assert registry.game_names().count("tictactoe") == 1
    assert is_user_game("hexapawn")
    game = get_game("hexapawn")
    assert game.info.name == "hexapawn" and game.info.num_actions == 27
    assert get_game("tictactoe").info.num_actions == 9  # a built-in name is not taken over


def test_entry_point_games_are_listed(tmp_path):
    make_distribution(tmp_path)
    proc = tabula_in(tmp_path, "games", pythonpath=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert ["hexapawn", "27", "2x3x3", "2", "2"] in rows
    assert ["tictactoe", "9", "3x3x3", "2", "8"] in rows
    assert proc.stdout.splitlines()[-1].startswith("any other game: --game module.path:")


# The self-check -----------------------------------------------------------------------

OBSERVATION = ("return np.stack([view == self.player + 1, view == 2 - self.player])"
               ".astype(np.float32)")
PLANTED = {
    "observation shape": ((OBSERVATION, OBSERVATION + ".ravel()"),
                          "State.observation() returned shape (18,), expected "
                          "GameInfo.observation_shape (2, 3, 3) (initial position)"),
    "observation dtype": ((OBSERVATION, OBSERVATION.replace("float32", "float64")),
                          "State.observation() must return a float32 array, got float64"),
    "illegal move marked legal": (("mask[self.legal_actions()] = True",
                                   "mask[self.legal_actions() + [0]] = True"),
                                  "State.legal_mask() marks action 0 ('a1xc2') legal but "
                                  "State.apply() refused it: hexapawn: illegal action 0 "
                                  "(initial position)"),
    "no legal move, not over": (("if to_row in (0, SIZE - 1) or not self.legal_actions():",
                                 "if to_row in (0, SIZE - 1):"),
                                "State.legal_mask() has no legal move but is_terminal() is "
                                "False"),
    "illegal move accepted": (("if action not in self.legal_actions():", "if False:"),
                              "State.apply("),
    "no terminal reward": (("return 1.0  # the mover's reward", "return 0.0  #"),
                           "State.apply() returned 0.0 for the move that ended the game"),
    "clone shares the board": (("other.board, other.player = self.board.copy(), self.player",
                                "other.board, other.player = self.board, self.player"),
                               "State.clone() is not independent"),
    "game too long": (("max_game_length=2 * SIZE * (SIZE - 2) + 1,", "max_game_length=3,"),
                      "a game lasted more than GameInfo.max_game_length = 3 moves"),
    "text round trip": (("                return action\n",
                         "                return action + 1\n"),
                        "State.text_to_action('a1-a2') returned 2, but action_to_text(1)"),
    "symmetry shape": (("return obs[..., ::-1].copy(), policy[:, MIRROR]",
                        "return obs[0], policy[:, MIRROR]"),
                       "Game.apply_symmetry(1) must return (obs, policy) arrays of the shapes"),
}


@pytest.mark.parametrize("bug", list(PLANTED))
def test_self_check_names_the_method_at_fault(tmp_path, monkeypatch, bug):
    replacement, message = PLANTED[bug]
    module = "bug_" + re.sub(r"\W", "_", bug)
    name = write_variant(tmp_path, module, replacement)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(GameError) as err:
        get_game(name)
    text = str(err.value)
    assert "\n" not in text and text.startswith(f"{name}: ")
    assert message in text, text


def test_self_check_error_is_one_cli_line(tmp_path):
    write_variant(tmp_path, "bad_hexapawn", (OBSERVATION, OBSERVATION + ".ravel()"))
    line = one_error_line(tabula_in(tmp_path, "train", "--game", "bad_hexapawn:Hexapawn",
                                    "--run", "r", "--iterations", "1"))
    assert "bad_hexapawn:Hexapawn: State.observation() returned shape (18,)" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("name, plays", [("tictactoe", 16), ("connect4", 8), ("go9", 1),
                                         ("go/5", 4), ("chess", 1)])
def test_self_check_passes_on_built_in_games(name, plays):
    check_game(get_game(name), plays=plays)


def test_self_check_passes_on_the_guide_game():
    sys.path.insert(0, str(EXAMPLE.parent))
    try:
        game = get_game("hexapawn:Hexapawn")
    finally:
        sys.path.remove(str(EXAMPLE.parent))
    for seed in range(5):
        check_game(game, plays=64, seed=seed)


# Bad module paths -----------------------------------------------------------------------

BAD_PATHS = {
    "nosuchmodule_xyz:Game": "game 'nosuchmodule_xyz:Game': no module named 'nosuchmodule_xyz'",
    "hexapawn_ok:Nope": "hexapawn_ok (hexapawn_ok.py) has no attribute 'Nope'",
    "hexapawn_ok:SIZE": "hexapawn_ok:SIZE (of type int) is not a game",
    "hexapawn_ok:HexapawnState": "hexapawn_ok:HexapawnState() returned a HexapawnState, not a "
                                 "game",
    "hexapawn_ok:": "expected module.path:Attribute",
    "raising_game:Game": "importing raising_game raised RuntimeError: boom (raising_game.py, "
                         "line 2)",
    "syntax_game:Game": "importing syntax_game raised SyntaxError: invalid syntax "
                        "(syntax_game.py, line 1)",
    "needs_dep_game:Game": "importing needs_dep_game raised ModuleNotFoundError: No module "
                           "named 'not_installed_dep_xyz' (needs_dep_game.py, line 1)",
}


@pytest.mark.parametrize("name", list(BAD_PATHS))
def test_bad_module_paths_are_one_line_errors(tmp_path, monkeypatch, capsys, name):
    write_variant(tmp_path, "hexapawn_ok")
    (tmp_path / "raising_game.py").write_text("import os\nraise RuntimeError('boom')\n")
    (tmp_path / "syntax_game.py").write_text("def broken(:\n")
    (tmp_path / "needs_dep_game.py").write_text("import not_installed_dep_xyz\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert cli.main(["play", "--game", name]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("tabula: error: "), err
    assert BAD_PATHS[name] in err[0]


def test_missing_module_exits_2_without_traceback(tmp_path):
    line = one_error_line(tabula_in(tmp_path, "train", "--game", "nosuchmodule_xyz:Game",
                                    "--run", "r"))
    assert "no module named 'nosuchmodule_xyz'" in line
    assert not (tmp_path / "r").exists()


# The guide ----------------------------------------------------------------------------

def test_guide_shows_the_example_file_verbatim():
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), flags=re.S)
    full = [b for b in blocks if b.startswith('"""Hexapawn')]
    assert len(full) == 1, "docs/NEW_GAME.md must show docs/examples/hexapawn.py once"
    assert full[0] == EXAMPLE.read_text()
