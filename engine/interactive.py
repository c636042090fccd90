"""Interactive batching: one position searched with several leaves per step.

Self-play and matches search many games at once, so one leaf per tree already
gives the network a large batch. A person, a GUI or an analysis client asks
about one position: one leaf at a time would send batch 1 to the network. The
front ends (GTP, UCI, the analysis engine, the text prompt) therefore give their
Player a `batch`, and every search selects several leaves per tree and step
(SearchConfig.leaves_per_step, with virtual loss) to fill it.

No imports: the command line reads INTERACTIVE_BATCH for its help texts.
"""

from __future__ import annotations

INTERACTIVE_BATCH = 16
"""Positions per network call that interactive play (GTP, UCI, the analysis engine, the
text prompt) aims for. One position searched one leaf at a time sends batch 1 to the
network, which then runs at a fraction of its batched speed (a 4 x 32 chess network:
~1,800 positions/s at batch 1, ~6,000 at 16 on 2 loaded cores); past 16 the speed
levels off while collisions between the descents of one tree grow."""
MIN_STEPS = {"puct": 64, "gumbel": 2}
"""Fewest selection steps a search of S simulations is cut into (leaves per step <= S /
MIN_STEPS), per root mode, so that strength at a fixed number of simulations stays the
same within error. Measured with the shipped Connect Four model (scripts/leaves_arena.py,
leaves vs one leaf per step, same simulations): PUCT steers every descent by the values
backed up so far, and pending visits count as losses: at 256 simulations 16 leaves
scored 0.449 (-36 Elo, 95% [-70, -2], 400 games), 4 leaves 0.477 (-16 [-50, +18]).
Gumbel's root follows its visit schedule and takes its move from the completed Q of
every result once all are in: 16 leaves scored 0.486 at 32 simulations (-10 [-29, +10],
1,200 games) and at 256 (-10 [-44, +25], 400 games). Two steps at least, so that the
first halving of sequential halving does not happen before any value is known."""
VIRTUAL_LOSS_STEPS = 16
"""Gumbel searches of at least this many steps (num_simulations / leaves_per_step) count
pending visits as losses below the root (kernels.select_leaves' gumbel_virtual_loss); fewer
steps keep the plain rule. The go9 policy is sharp: with pending visits in N alone, the
interior rule sends a descent into the leaf of the step still awaiting the network, and it
is dropped (40 positions of the shipped go9 model, 256 simulations, 16 leaves: 6.1
positions per network call, 15,500 descents dropped at depths 1-20 for 10,240 leaves; as
losses: 14.3 per call, 324 dropped; GTP nodes/s / network alone 0.74 -> 0.87). Strength
with the shipped Connect Four model, losses counted, against one leaf per step
(scripts/leaves_arena.py, 400 games each): 256 simulations with 16 leaves (16 steps) 0.497
(-2 Elo, 95% [-36, +32]) and 32 with 4 (8 steps) 0.481 (-13 [-47, +21]), but 128 with 16
(8 steps) 0.421 (-55 [-90, -21]), 32 with 8 0.420 (-56 [-91, -22]) and 32 with 16 0.370
(-92 [-128, -57]), where the plain rule scored 0.516 (+11 [-23, +45]). In a search of few
steps the dropped descents keep it sequential; losses send the step's extra leaves to
siblings that the one-leaf search would not visit."""


def interactive_leaves(batch: int, num_trees: int, num_simulations: int,
                       root_mode: str) -> int:
    """Leaves per tree and step so that one network call sees about `batch` positions.

    Several trees searched together already fill the batch (batch // num_trees); a
    small search is not cut into fewer than MIN_STEPS[root_mode] steps.

    Returns:
      An int >= 1 (1 when batch is 1).
    """
    share = batch // max(num_trees, 1)
    return max(1, min(share, num_simulations // MIN_STEPS[root_mode]))


__all__ = ["INTERACTIVE_BATCH", "MIN_STEPS", "VIRTUAL_LOSS_STEPS", "interactive_leaves"]
