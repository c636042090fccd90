"""The UCI engine: committed transcripts through the real `tabula uci`, live sessions
(stop, isready and ponderhit while searching, clocks, weights), python-chess as the
client, and a game against Stockfish when it is installed."""

from __future__ import annotations

import math
import queue
import random
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, make_checkpoint
from tests.extras import need

DATA = Path(__file__).parent / "data" / "uci"
STARTUP = 60.0
"""Seconds allowed for the engine's first answer (imports, kernel loading)."""
HANG = 60.0
"""Seconds after which a missing answer is a hang, not slowness (tests assert behaviour;
speeds are `tabula bench uci`'s)."""
STOCKFISH = shutil.which("stockfish") or shutil.which("stockfish", path="/usr/games")
KIWIPETE = "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1"
FOOLS_MATE = "f2f3 e7e5 g2g4 d8h4"
OPTION_NAMES = ["Nodes", "Threads", "MinibatchSize", "WeightsFile", "UCI_ShowWDL",
                "MoveOverhead", "Ponder"]
COMMAND = [sys.executable, "-m", "tabula", "uci", "--nodes", "8"]


def chess_game():
    from games import get_game

    return get_game("chess")


def _normalise(text: str) -> str:
    """Search output with the timing numbers (time, nps) blanked."""
    return re.sub(r"\b(time|nps) \d+", r"\1 *", text)


# A live engine -------------------------------------------------------------------

def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))
    lines.put(None)


class UciProcess:
    """`tabula uci ARGS` in a subprocess, output lines read by a thread."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen(
            [*COMMAND[:4], *args], cwd=REPO, text=True, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True).start()

    def send(self, command: str) -> None:
        """Writes one line."""
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def line(self, timeout: float = STARTUP) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output within {timeout} s") from None
        assert line is not None, f"engine exited: {self.proc.stderr.read()}"
        return line

    def until(self, first_word: str, timeout: float = STARTUP) -> list[str]:
        """Lines up to and including the first whose first word is `first_word`."""
        out = []
        while not out or out[-1].split()[:1] != [first_word]:
            out.append(self.line(timeout))
        return out

    def quiet(self, seconds: float) -> list[str]:
        """The lines that arrive within `seconds`."""
        end, out = time.monotonic() + seconds, []
        while (left := end - time.monotonic()) > 0:
            try:
                out.append(self.lines.get(timeout=left))
            except queue.Empty:
                break
        return out

    def close(self) -> int:
        if self.proc.poll() is None:
            self.send("quit")
        code = self.proc.wait(timeout=30)
        assert "Traceback" not in self.proc.stderr.read()
        return code


@pytest.fixture(scope="module")
def engine():
    uci = UciProcess("--nodes", "8")
    uci.send("uci")
    lines = uci.until("uciok")
    assert lines[0] == "id name Tabula"
    uci.send("isready")
    assert uci.until("readyok")[-1] == "readyok"
    yield uci
    assert uci.close() == 0


def _bestmove(lines) -> str:
    return lines[-1].split()[1]


def _legal(fen_or_moves: str, move: str) -> bool:
    game = chess_game()
    if "/" in fen_or_moves:
        state = game.new_initial_state(fen_or_moves)
    else:
        state = game.state_from_moves(fen_or_moves.split())
    return move in state.legal_moves_uci()


# Transcripts ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["session", "errors"])
def test_transcript(tabula, name):
    """session: options, positions, `d`, perft from the start (8902) and Kiwipete (2039),
    mate and stalemate (bestmove 0000), a repetition searched on. errors: every kind of
    bad line gets one `info string` and changes nothing; a bad `go` (a malformed perft
    too) names what it ignores and still searches and answers one bestmove."""
    proc = tabula("uci", "--nodes", "8", stdin=(DATA / f"{name}.uci").read_text())
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    expected = (DATA / f"{name}.out").read_text()
    assert _normalise(proc.stdout).splitlines() == expected.splitlines()


def test_transcript_perft_counts():
    text = (DATA / "session.out").read_text()
    blocks = re.findall(r"((?:^[a-h][1-8][a-h][1-8][qrbn]?: \d+\n)+)\nNodes searched: (\d+)\n",
                        text, re.M)
    assert [(len(b.splitlines()), int(n)) for b, n in blocks] == [(20, 8902), (48, 2039)]
    assert sum(int(x.split(": ")[1]) for x in blocks[0][0].splitlines()) == 8902
    assert "e2e4: 600" in blocks[0][0]


def test_user_errors_exit_2(tabula):
    proc = tabula("uci", "--nodes", "-1")
    assert proc.returncode == 2 and "option Nodes must be in" in proc.stderr, proc.stderr
    proc = tabula("uci", "--checkpoint", "/nonexistent/net.safetensors")
    assert proc.returncode == 2 and proc.stderr.startswith("tabula: error: "), proc.stderr


# Live session ----------------------------------------------------------------------

def test_stop_isready_and_info_while_searching(engine):
    """`go infinite`: info lines while it thinks, readyok while searching, bestmove
    only after `stop`. (How soon after stop is a speed: `tabula bench uci` measures it.)"""
    engine.send("position startpos moves e2e4")
    engine.send("go infinite")
    lines = engine.until("info", timeout=HANG)
    engine.send("isready")
    lines += engine.until("readyok", timeout=HANG)
    while sum(line.startswith("info depth") for line in lines) < 3:  # it goes on
        lines.append(engine.line(timeout=HANG))
    engine.send("stop")
    lines += engine.until("bestmove", timeout=HANG)
    assert all(not line.startswith("bestmove") for line in lines[:-1])
    infos = [line for line in lines if line.startswith("info depth")]
    depths = [int(line.split()[2]) for line in infos]
    assert depths == sorted(depths) and depths[-1] > depths[0], infos
    assert "pv" in infos[-1]
    fields = infos[-1].split()
    for key in ("depth", "seldepth", "time", "nodes", "nps", "score"):
        assert key in fields
    assert fields[fields.index("score") + 1] == "cp"
    assert _legal("e2e4", _bestmove(lines))


def test_ponder_then_ponderhit_or_stop(engine):
    """Pondering is infinite until ponderhit (then the clock's plan: bestmove without
    stop) or stop."""
    engine.send("position startpos moves e2e4 e7e5")
    engine.send("go ponder wtime 6000 btime 6000")
    lines = engine.until("info", timeout=HANG)
    assert not any(line.startswith("bestmove") for line in engine.quiet(0.6))
    engine.send("ponderhit")
    lines = engine.until("bestmove", timeout=HANG)  # by itself: 6 s / 30 moves - overhead
    assert _legal("e2e4 e7e5", _bestmove(lines))
    engine.send("go ponder wtime 6000 btime 6000")
    engine.until("info", timeout=HANG)
    engine.send("stop")
    lines = engine.until("bestmove", timeout=HANG)
    assert _legal("e2e4 e7e5", _bestmove(lines))


def test_clock_and_movetime(engine):
    """Timed searches answer by themselves (no stop), and use the time: past the first
    search of 1 simulation (2 positions). How close to the budget they answer is a
    speed: `tabula bench uci` measures it."""
    engine.send("setoption name Nodes value 0")  # no cap: the clock decides
    try:
        engine.send("position startpos")
        engine.send("go movetime 400")
        lines = engine.until("bestmove", timeout=HANG)
        nodes = [int(line.split()[line.split().index("nodes") + 1]) for line in lines
                 if line.startswith("info depth")]
        assert nodes and nodes[-1] > 2, lines
        engine.send("position startpos moves d2d4")
        engine.send("go wtime 3000 btime 3000 winc 100 binc 100")
        lines = engine.until("bestmove", timeout=HANG)
        assert _legal("d2d4", _bestmove(lines))
    finally:
        engine.send("setoption name Nodes value 8")


def test_finished_game_waits_for_stop_when_infinite(engine):
    engine.send(f"position startpos moves {FOOLS_MATE}")
    engine.send("go infinite")
    early = engine.until("info", timeout=HANG)
    early.append(engine.line(timeout=HANG))
    assert early == ["info string the game is over (checkmate): no move to play",
                     "info depth 0 score mate 0"]
    assert engine.quiet(0.4) == []  # no bestmove before stop
    engine.send("stop")
    assert engine.until("bestmove", timeout=HANG)[-1] == "bestmove 0000"


def test_bad_bytes_and_go_while_searching(engine):
    engine.proc.stdin.flush()
    engine.proc.stdin.buffer.write(b"\xff\xfe garbage\x01\n")
    engine.proc.stdin.buffer.flush()
    engine.send("isready")
    lines = engine.until("readyok", timeout=HANG)
    assert lines[0].startswith("info string unknown command") and lines[-1] == "readyok"
    engine.send("position startpos")
    engine.send("go infinite")
    engine.send("go nodes 8")  # stops the infinite search, which answers first
    engine.send("go nodes 8")  # waits for the search with limits, then searches
    lines = engine.until("bestmove", timeout=HANG)
    lines += engine.until("bestmove", timeout=HANG)
    lines += engine.until("bestmove", timeout=HANG)
    assert lines.count("info string go while searching: the running search is stopped "
                       "first") == 1, lines
    bests = [line.split()[1] for line in lines if line.startswith("bestmove ")]
    assert len(bests) == 3 and all(_legal("", b) for b in bests), lines
    engine.send("stop")  # nothing is running: no fourth bestmove
    engine.send("isready")
    assert not [line for line in engine.until("readyok", timeout=HANG)
                if line.startswith("bestmove")]


def test_weights_file_option(engine, tmp_path, tiny_checkpoints):
    path = make_checkpoint(tmp_path / "chess.safetensors", "chess")
    try:
        engine.send(f"setoption name WeightsFile value {path}")
        engine.send("setoption name Threads value 1")
        engine.send("setoption name UCI_ShowWDL value true")
        engine.send("isready")
        assert engine.until("readyok") == ["readyok"]
        engine.send("position startpos moves g1f3")
        engine.send("go nodes 8")
        lines = engine.until("bestmove", timeout=HANG)
        assert _legal("g1f3", _bestmove(lines))
        info = lines[-2]
        assert " score cp " in info and re.search(r" wdl \d+ \d+ \d+ ", info), info
        w, d, l = map(int, re.search(r" wdl (\d+) (\d+) (\d+) ", info).groups())
        assert w + d + l == 1000
        engine.send(f"setoption name WeightsFile value {tiny_checkpoints['tictactoe']}")
        engine.send("isready")
        lines = engine.until("readyok")
        assert lines[0].startswith("info string cannot set WeightsFile: ")
        assert "tictactoe" in lines[0]
    finally:
        engine.send("setoption name WeightsFile value <empty>")
        engine.send("setoption name UCI_ShowWDL value false")
        engine.send("isready")
        assert engine.until("readyok") == ["readyok"]


def _nodes(lines: list[str]) -> int:
    info = [line for line in lines if line.startswith("info depth")][-1].split()
    return int(info[info.index("nodes") + 1])


def test_minibatch_size_keeps_the_node_budget(engine):
    """MinibatchSize (0: automatic, 16 positions per network call) changes how leaves are
    gathered, never how many: `go nodes 64` searches 1 simulation, then 64, so the
    network sees 2 + 65 positions whatever the option."""
    try:
        for value in ("0", "1", "16", "256"):
            engine.send(f"setoption name MinibatchSize value {value}")
            engine.send("position startpos moves e2e4")
            engine.send("go nodes 64")
            lines = engine.until("bestmove", timeout=HANG)
            assert _legal("e2e4", _bestmove(lines)) and _nodes(lines) == 67, (value, lines)
        engine.send("setoption name MinibatchSize value 257")
        engine.send("isready")
        lines = engine.until("readyok")
        assert lines[0] == "info string option MinibatchSize must be in [0, 256], not 257"
    finally:
        engine.send("setoption name MinibatchSize value 0")
        engine.send("isready")
        assert engine.until("readyok") == ["readyok"]


# python-chess as the client -------------------------------------------------------

@pytest.fixture(scope="module")
def client():
    chess_engine = need("chess") and pytest.importorskip("chess.engine")
    engine = chess_engine.SimpleEngine.popen_uci(COMMAND, timeout=STARTUP, cwd=REPO)
    yield engine
    engine.quit()


def test_python_chess_plays_legal_moves(client):
    import chess
    import chess.engine

    assert client.id["name"] == "Tabula"
    for fen in (chess.STARTING_FEN, KIWIPETE):
        board = chess.Board(fen)
        limits = [chess.engine.Limit(nodes=8), chess.engine.Limit(time=0.2),
                  chess.engine.Limit(white_clock=5, black_clock=5, white_inc=0.1,
                                     black_inc=0.1),
                  chess.engine.Limit(depth=3)]
        for limit in limits:
            result = client.play(board, limit)  # python-chess rejects an illegal move
            assert result.move in board.legal_moves
            board.push(result.move)
    mated = chess.Board()
    for move in FOOLS_MATE.split():
        mated.push_uci(move)
    assert client.play(mated, chess.engine.Limit(nodes=8)).move == chess.Move.null()  # 0000


def test_python_chess_analyse(client):
    import chess
    import chess.engine

    board = chess.Board(KIWIPETE)
    info = client.analyse(board, chess.engine.Limit(nodes=16))
    assert info["score"].relative == chess.engine.Cp(0)  # uniform evaluator: value 0
    assert info["pv"] and info["pv"][0] in board.legal_moves
    assert info["depth"] == 4 and info["nodes"] >= 16  # 16 simulations = depth 4
    client.configure({"UCI_ShowWDL": True})
    info = client.analyse(board, chess.engine.Limit(nodes=8))
    assert info["wdl"].relative.expectation() == pytest.approx(0.5)
    client.configure({"UCI_ShowWDL": False})


def test_python_chess_sees_the_options(client):
    options = client.options
    assert list(options) == OPTION_NAMES
    assert options["Nodes"].type == "spin" and options["Nodes"].default == 0
    assert options["WeightsFile"].type == "string"
    assert options["UCI_ShowWDL"].type == "check" and options["UCI_ShowWDL"].default is False
    assert options["MoveOverhead"].default == 100


# In-process: options, time, scores, robustness ------------------------------------

def test_options_feed_the_cli_and_setoption():
    from arena.protocols.uci_options import OPTIONS, UciError, find_option
    from tabula.cli import build_parser

    parser = build_parser()
    args = parser.parse_args(["uci", "--nodes", "5", "--show-wdl", "--move-overhead", "30",
                              "--checkpoint", "x.safetensors"])
    assert (args.Nodes, args.UCI_ShowWDL, args.MoveOverhead, args.WeightsFile) == (
        5, True, 30, "x.safetensors")
    assert [o.name for o in OPTIONS] == OPTION_NAMES
    assert find_option("uci_showwdl").parse("TRUE") is True
    assert find_option("WeightsFile").parse("<empty>") == ""
    with pytest.raises(UciError):
        find_option("Nodes").parse("1.5")
    with pytest.raises(SystemExit):
        parser.parse_args(["uci", "--move-overhead", "-3"])


def test_minibatch_size_is_the_players_batch():
    from arena.protocols.gtp_time import SimsRate
    from arena.protocols.uci_options import defaults, make_player
    from arena.protocols.uci_search import SearchJob, SearchPlan
    from engine.interactive import INTERACTIVE_BATCH
    from tabula.cli import build_parser

    game = chess_game()
    assert defaults()["MinibatchSize"] == 0
    assert make_player(game, defaults()).batch == INTERACTIVE_BATCH
    assert make_player(game, {"MinibatchSize": 1}).batch == 1
    player = make_player(game, {"MinibatchSize": 32})
    assert player.batch == 32 and player.search_for(1, 1000).leaves_per_step == 32
    plan = SearchPlan(None, 8, False, False, False, 8)
    job = SearchJob(player, game.new_initial_state(), plan, SimsRate(), lambda line: None)
    assert job.player.batch == 32  # the job's stoppable player batches the same way
    assert build_parser().parse_args(["uci", "--minibatch-size", "4"]).MinibatchSize == 4


def test_time_plans():
    from arena.protocols.uci_search import GoLimits, clock_seconds, max_sims, parse_go, plan_search

    assert clock_seconds(GoLimits(movetime=500), True, 100) == pytest.approx(0.4)
    assert clock_seconds(GoLimits(wtime=60000, winc=1000), True, 100) == pytest.approx(
        60 / 30 + 0.8 - 0.1)
    assert clock_seconds(GoLimits(wtime=60000, btime=9000, movestogo=3), False, 0) == \
        pytest.approx(3.0)
    assert clock_seconds(GoLimits(wtime=1000, winc=5000), True, 0) == pytest.approx(0.5)
    assert clock_seconds(GoLimits(wtime=-50), True, 100) == 0.0
    assert clock_seconds(GoLimits(), True, 0) is None
    limits = parse_go("wtime 1000 btime 2000 movestogo 5 ponder searchmoves e2e4 d2d4 "
                      "nodes 9".split())
    assert (limits.btime, limits.movestogo, limits.ponder, limits.nodes,
            limits.searchmoves) == (2000, 5, True, 9, ("e2e4", "d2d4"))
    big = max_sims(4674)
    plan = plan_search(parse_go(["depth", "5"]), True, 100, 8, 64, 4674)
    assert (plan.cap, plan.grow, plan.seconds) == (32, False, None)  # depth 5: 2^5 sims
    assert plan_search(parse_go([]), True, 100, 8, 64, 4674).cap == 8  # the Nodes option
    assert plan_search(parse_go([]), True, 100, 0, 64, 4674).cap == 64  # the player's
    plan = plan_search(parse_go(["movetime", "1000"]), True, 100, 0, 64, 4674)
    assert (plan.cap, plan.grow, plan.seconds) == (big, True, pytest.approx(0.9))
    plan = plan_search(parse_go(["infinite"]), True, 100, 8, 64, 4674)
    assert plan.infinite and plan.limit == big


def test_score_mappings():
    from arena.protocols.uci_search import MAX_CP, centipawns, depth_of, wdl

    assert centipawns(0.0) == 0 and centipawns(1.0) == MAX_CP and centipawns(-2) == -MAX_CP
    assert centipawns(0.5) == round(111.714640912 * math.tan(1.5620688421 * 0.5)) == 111
    values = [centipawns(v / 10) for v in range(-10, 11)]
    assert values == sorted(values) and values[10] == 0
    assert wdl(0.25) == (250, 750, 0) and wdl(-1.0) == (0, 0, 1000) and wdl(0.0) == (0, 1000, 0)
    assert all(sum(wdl(v / 7)) == 1000 for v in range(-7, 8))
    assert [depth_of(n) for n in (1, 2, 16, 17, 1024)] == [1, 1, 4, 4, 10]


def test_handle_never_raises():
    """Random lines through an in-process engine: answers are UCI lines or info strings."""
    from arena.protocols.uci import UciEngine

    emitted: list[str] = []
    engine = UciEngine(chess_game(), emitted.append, {"Nodes": 2})
    names = list(engine.commands) + ["", "bogus", "perft"]
    names.remove("quit")
    words = ["startpos", "fen", "moves", "e2e4", "e7e5", "e2e5", "g1f3", "name", "value",
             "Nodes", "UCI_ShowWDL", "MoveOverhead", "true", "x", "-1", "0", "1", "2",
             "perft", "wtime", "btime", "winc", "movestogo", "movetime", "depth", "nodes",
             "infinite", "ponder", "searchmoves", "8/8/8/8/8/8/8/8", "w", "b", "-", "KQkq",
             "\u00e9", "mate"]
    rng = random.Random(0)
    allowed = re.compile(r"(info |id |option |uciok|readyok|bestmove |[a-h][1-8][a-h][1-8]"
                         r"[qrbn]?: |Nodes searched: | [+|]|   a   b|Fen: |$)")
    for _ in range(400):
        line = " ".join([rng.choice(names)] + rng.choices(words, k=rng.randint(0, 5)))
        answer = engine.handle(line)
        if engine._searching():
            engine.handle("stop")
        for out in answer.splitlines():
            assert allowed.match(out), (line, out)
            assert "internal error" not in out, (line, out)
    engine.handle("stop")
    assert not any("internal error" in e or "search failed" in e for e in emitted)
    assert all(allowed.match(e) for e in emitted)


# A real opponent ------------------------------------------------------------------

@pytest.mark.skipif(STOCKFISH is None, reason="stockfish is not installed")
def test_game_against_stockfish():
    """One game from the start through arena.matches.match: every move legal, no protocol error."""
    from arena.matches.external import ExternalPlayer
    from arena.matches.match import MatchSettings, play_games

    game = chess_game()
    ours = ExternalPlayer("uci", COMMAND, game, name="tabula", cwd=REPO, timeout=STARTUP)
    stockfish = ExternalPlayer("uci", STOCKFISH, game, name="stockfish",
                               options={"Skill Level": "0"}, move_time=0.05)
    results = []
    try:
        play_games(game, ours, stockfish, [0], MatchSettings("chess", opening_plies=0),
                   results.append)
    finally:
        ours.close()
        stockfish.close()
    assert len(results) == 1
    result = results[0]
    assert result.reason is None, result.reason  # no forfeit
    state = game.new_initial_state()
    for move in result.moves:
        state.apply(state.text_to_action(move))
    assert state.is_terminal() and result.first == "tabula"
