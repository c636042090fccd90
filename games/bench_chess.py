"""`tabula bench perft`: chess move generation against the published perft table.

Positions and node counts are the Chess Programming Wiki's "Perft Results"
(initial position, Kiwipete, positions 3 to 6). Each count is checked and
timed; python-chess's perft (pure Python, if installed) is timed on the same
positions as a reference.
"""

from __future__ import annotations

import argparse
import time

# (name, FEN, {depth: published node count})
POSITIONS = [
    ("initial", "rnbqkbnr/pppppppp/8/8/8/8/PPPPPPPP/RNBQKBNR w KQkq - 0 1",
     {1: 20, 2: 400, 3: 8902, 4: 197281, 5: 4865609}),
    ("kiwipete", "r3k2r/p1ppqpb1/bn2pnp1/3PN3/1p2P3/2N2Q1p/PPPBBPPP/R3K2R w KQkq - 0 1",
     {1: 48, 2: 2039, 3: 97862, 4: 4085603}),
    ("position 3", "8/2p5/3p4/KP5r/1R3p1k/8/4P1P1/8 w - - 0 1",
     {1: 14, 2: 191, 3: 2812, 4: 43238}),
    ("position 4", "r3k2r/Pppp1ppp/1b3nbN/nP6/BBP1P3/q4N2/Pp1P2PP/R2Q1RK1 w kq - 0 1",
     {1: 6, 2: 264, 3: 9467, 4: 422333}),
    ("position 5", "rnbq1k1r/pp1Pbppp/2p5/8/2B5/8/PPP1NnPP/RNBQK2R w KQ - 1 8",
     {1: 44, 2: 1486, 3: 62379, 4: 2103487}),
    ("position 6", "r4rk1/1pp1qppp/p1np1n2/2b1p1B1/2B1P1b1/P1NP1N2/1PP1QPPP/R4RK1 w - - 0 10",
     {1: 46, 2: 2079, 3: 89890, 4: 3894594}),
]


def _reference_perft(board, depth: int) -> int:
    if depth == 0:
        return 1
    total = 0
    for move in list(board.legal_moves):
        board.push(move)
        total += _reference_perft(board, depth - 1)
        board.pop()
    return total


def main(argv: list[str] | None = None) -> int:
    """Prints each position's count, whether it matches, and nodes/s (ours and python-chess)."""
    from games import get_game

    p = argparse.ArgumentParser(prog="tabula bench perft", description=__doc__.split("\n\n")[0])
    p.add_argument("--depth", type=int, default=4,
                   help="deepest depth (initial position one deeper; default 4)")
    p.add_argument("--reference-depth", type=int, default=3,
                   help="depth timed with python-chess (0: skip; default 3)")
    args = p.parse_args(argv)
    try:
        import chess
    except ImportError:
        chess = None
    game = get_game("chess")
    failures = 0
    for name, fen, table in POSITIONS:
        depth = min(args.depth + (name == "initial"), max(table))
        state = game.new_initial_state(fen)
        start = time.perf_counter()
        nodes = state.perft(depth)
        seconds = time.perf_counter() - start
        ok = nodes == table[depth]
        failures += not ok
        line = (f"{name:<11} depth {depth}: {nodes:>9,} nodes "
                f"({'ok' if ok else f'WRONG, published {table[depth]:,}'}) "
                f"{seconds:6.2f} s = {nodes / seconds / 1e6:.2f} M nodes/s")
        if chess is not None and args.reference_depth > 0:
            ref_depth = min(args.reference_depth, depth)
            start = time.perf_counter()
            ref_nodes = _reference_perft(chess.Board(fen), ref_depth)
            ref_rate = ref_nodes / (time.perf_counter() - start)
            start = time.perf_counter()
            state.perft(ref_depth)
            ours = ref_nodes / (time.perf_counter() - start)
            line += (f"; python-chess at depth {ref_depth}: {ref_rate / 1e3:.0f} k nodes/s, "
                     f"ours {ours / ref_rate:.1f}x")
        print(line, flush=True)
    print("all counts match the published table" if not failures
          else f"{failures} counts differ from the published table")
    return 1 if failures else 0
