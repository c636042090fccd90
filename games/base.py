"""The game interface every game family implements.

Games know nothing of the engine. A game is a `Game` object (facts in a frozen
`GameInfo`, a factory for initial states, symmetries for augmentation) and its
`State` objects. For search, a game hands out a `SearchBatch`: B root positions
plus storage for the positions of the search nodes, expanded in one call per
simulation step. The generic `ObjectBatch` does that with `State.clone()` and
`State.apply()`; games whose rules are cheap enough to be the bottleneck
provide an array-based batch compiled with Numba (mnk.py for tic-tac-toe and
Connect Four, go_batch.py), or keep open_spiel's states per node and the rest
in arrays (chess_batch.py).

Conventions:
  * Players are 0 and 1 (single-player environments: always 0).
  * Observations are float32 arrays of shape `GameInfo.observation_shape`,
    from the point of view of the player to move.
  * Actions are ints in [0, num_actions), open_spiel's numbering where the
    game comes from open_spiel.
  * `reward` of a transition is from the point of view of the player who
    made the move.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import numpy as np


class GameError(ValueError):
    """Bad input about a game: unknown name, illegal or malformed move."""


def parse_count(text: str, limit: int = 2**31) -> int | None:
    """The value of `text` if it is ASCII digits (no sign) below `limit`, else None.

    For move ids, board sizes and counters typed by users. Not str.isdigit()
    then int(): '\u00b2'.isdigit() is true but int('\u00b2') raises, and int()
    of more than 4300 digits raises too.
    """
    digits = text.lstrip("0") or "0"
    if not (text.isascii() and text.isdigit()) or len(digits) > len(str(limit)):
        return None
    value = int(digits)
    return value if value < limit else None


def check_out(name: str, array: np.ndarray, dtype, shape: tuple[int, ...]) -> None:
    """Raises ValueError unless `array` is a `dtype` array of at least shape[0] rows of
    shape[1:]. Search batches check every buffer before a Numba kernel writes it:
    Numba does not bounds-check, so a wrong buffer would corrupt memory."""
    if (not isinstance(array, np.ndarray) or array.dtype != dtype
            or array.shape[0] < shape[0] or array.shape[1:] != shape[1:]):
        raise ValueError(
            f"{name} must be a {np.dtype(dtype).name} array of shape {shape}, got "
            f"{getattr(array, 'dtype', type(array))} {getattr(array, 'shape', '')}")


def check_leaves(leaf_tree, leaf_parent, leaf_node, leaf_action, obs_out, mask_out,
                 reward_out, terminal_out, obs_shape: tuple[int, ...], num_actions: int):
    """The leaf arrays of `SearchBatch.expand` as int32[L], every buffer checked (check_out).

    Raises:
      ValueError: leaf arrays of different lengths, or a wrong output buffer.
    """
    leaf_tree = np.asarray(leaf_tree, np.int32)
    leaf_parent = np.asarray(leaf_parent, np.int32)
    leaf_node = np.asarray(leaf_node, np.int32)
    leaf_action = np.asarray(leaf_action, np.int32)
    num_leaves = leaf_tree.shape[0]
    if not leaf_parent.shape == leaf_node.shape == leaf_action.shape == (num_leaves,):
        raise ValueError("leaf_tree, leaf_parent, leaf_node, leaf_action must be "
                         f"int32[L] of one length, got shapes {leaf_tree.shape}, "
                         f"{leaf_parent.shape}, {leaf_node.shape}, {leaf_action.shape}")
    check_out("obs_out", obs_out, np.float32, (num_leaves, *obs_shape))
    check_out("mask_out", mask_out, np.bool_, (num_leaves, num_actions))
    check_out("reward_out", reward_out, np.float32, (num_leaves,))
    check_out("terminal_out", terminal_out, np.bool_, (num_leaves,))
    return leaf_tree, leaf_parent, leaf_node, leaf_action


@dataclass(frozen=True)
class GameInfo:
    """Facts about a game, declared once."""

    name: str
    """Registry name, e.g. 'connect4'."""
    num_actions: int
    """Size of the policy vector."""
    observation_shape: tuple[int, ...]
    """Shape of one observation, e.g. (3, 6, 7)."""
    num_players: int
    """1 for environments, 2 for board games."""
    max_game_length: int
    """Upper bound on the number of moves in a game."""
    num_symmetries: int = 1
    """Number of symmetries (identity included) usable for augmentation."""
    has_draws: bool = False
    """Whether the game can end in a draw."""
    alternating: bool = True
    """Two-player games: whether every move passes the turn to the opponent. False: a
    player may move several times in a row (an extra turn, a move made of several
    actions); the search then asks the game's SearchBatch who moves at each new node
    (`MoverBatch`), and its search batches must implement that. Environments (one
    player): True."""
    discount: float = 1.0
    """Per-step discount for single-player environments."""
    territory: bool = False
    """Whether a finished game's states tell who owns each point and by how much player 0
    won (`final_territory()`, Go): self-play records them and the learner can train
    ownership and score heads on them (KataGo's auxiliary targets)."""
    kind: str = "board"
    """'board' (two players, rules known to the search) or 'environment' (one agent,
    learned dynamics: MuZero only)."""
    record_format: str = "moves"
    """How finished games are written: 'moves' (a plain move list) or the name of the
    game's own format ('sgf', 'pgn'), which its `format_record(moves, result, headers)`
    writes and which is the file suffix of the games it writes."""
    gtp_setup: tuple[str, ...] = ()
    """GTP commands that set an external engine up for this game (Go: boardsize, komi)."""
    uci_variant: str | None = None
    """UCI_Variant sent to an external UCI engine (None: standard chess or no UCI)."""
    frame_stack: int = 0
    """Environments whose observation is their last `frame_stack` screens (Atari: uint8
    frames, observation_shape[0] of them): the replay stores each frame once, taken from
    the environment's `frame()`, and rebuilds the stack by slicing. 0: observations are
    stored whole as float planes (board games; vector environments such as gym/CartPole-v1)."""
    screen: bool = False
    """Environments: whether an environment shows a full-colour screen (`rgb()` ->
    uint8[H, W, 3]) that `tabula play` can record as a GIF (Atari)."""

    def __post_init__(self):
        if self.kind not in ("board", "environment"):
            raise ValueError(f"GameInfo.kind must be 'board' or 'environment', got {self.kind!r}")
        if self.frame_stack and (self.kind != "environment" or self.frame_stack < 0
                                 or self.observation_shape[0] != self.frame_stack):
            raise ValueError("GameInfo.frame_stack must be 0, or for an environment the first "
                             f"observation dimension; got {self.frame_stack!r} with kind "
                             f"{self.kind!r} and observation_shape {self.observation_shape}")


@runtime_checkable
class State(Protocol):
    """A position of a game with known rules."""

    def legal_mask(self) -> np.ndarray:
        """bool[num_actions]: which actions are legal (all False when terminal)."""

    def apply(self, action: int) -> float:
        """Plays `action` in place; returns the reward for the player who moved.

        Raises GameError for an illegal action.
        """

    def clone(self) -> "State":
        """An independent copy."""

    def is_terminal(self) -> bool:
        """Whether the game is over."""

    def returns(self) -> np.ndarray:
        """float32[num_players]: final outcome per player (+1 win, 0 draw, -1 loss)."""

    def to_play(self) -> int:
        """Player to move (0 or 1); undefined when terminal."""

    def observation(self) -> np.ndarray:
        """float32[observation_shape] from the point of view of the player to move."""

    def history(self) -> list[int]:
        """Actions played from the initial position."""

    def action_to_text(self, action: int) -> str:
        """Human move text for `action` in this position, e.g. '4' in Connect Four."""

    def text_to_action(self, text: str) -> int:
        """Parses move text (or an action id); raises GameError if malformed or illegal."""

    def __str__(self) -> str:
        """The board as text."""

    # Games declaring GameInfo.territory also have, for finished games:
    #   final_territory() -> (int8[H*W] owner of each point from player 0's side: +1
    #   player 0, -1 player 1, 0 nobody; float the score margin of player 0).


class SearchBatch(Protocol):
    """B root positions plus storage for the positions of search nodes.

    Node 0 of tree b holds root b. Node ids are allocated by the search; each
    node's position is its parent's position plus one action.
    """

    num_trees: int

    def observe_roots(self, obs_out: np.ndarray, mask_out: np.ndarray) -> None:
        """Writes the roots' observations and legal masks.

        Args:
          obs_out: float32[B, *observation_shape], written.
          mask_out: bool[B, num_actions], written.
        """

    def expand(
        self,
        leaf_tree: np.ndarray,
        leaf_parent: np.ndarray,
        leaf_node: np.ndarray,
        leaf_action: np.ndarray,
        obs_out: np.ndarray,
        mask_out: np.ndarray,
        reward_out: np.ndarray,
        terminal_out: np.ndarray,
    ) -> None:
        """Creates the positions of new nodes; one call per simulation step.

        For each leaf l with leaf_node[l] >= 0: position(leaf_tree[l], leaf_node[l])
        = position(leaf_tree[l], leaf_parent[l]) after leaf_action[l]. Leaves with
        leaf_node[l] < 0 are skipped (their outputs are left as they are).

        Args:
          leaf_tree, leaf_parent, leaf_node, leaf_action: int32[L].
          obs_out: float32[L, *observation_shape], written.
          mask_out: bool[L, num_actions], written (all False when terminal).
          reward_out: float32[L], reward for the player who moved, written.
          terminal_out: bool[L], written.
        """


@runtime_checkable
class MoverBatch(Protocol):
    """A SearchBatch that also tells who moves at each node: required of the search
    batches of games declaring `GameInfo.alternating` False, asked only for those."""

    def players_to_move(self, trees: np.ndarray, nodes: np.ndarray, out: np.ndarray) -> None:
        """Writes the player to move (0 or 1) at created nodes.

        Args:
          trees, nodes: int[L]; node nodes[l] of tree trees[l], created (the root or
            a leaf of an earlier `expand`); rows with nodes[l] < 0 are skipped.
          out: int8[L], written (for a terminal node: any value).
        """


class Game(Protocol):
    """A game family instance: facts, initial states, symmetries, search batches."""

    info: GameInfo

    def new_initial_state(self) -> State:
        """The starting position."""

    def apply_symmetry(
        self, k: int, obs: np.ndarray, policy: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Transforms a batch by symmetry k (0 = identity).

        Args:
          k: symmetry index in [0, info.num_symmetries).
          obs: float32[N, *observation_shape].
          policy: float32[N, num_actions].
        Returns:
          (obs, policy) transformed, same shapes.
        """

    def new_search_batch(self, roots: Sequence[State], capacity: int) -> SearchBatch:
        """A SearchBatch over `roots` with room for `capacity` nodes per tree."""


@runtime_checkable
class SpielBacked(Protocol):
    """A game whose rules are open_spiel's: `spiel_game` is the pyspiel game (None where
    the game runs its own rules, e.g. Go with rules='native'). Its states may carry
    their pyspiel state as `spiel_state` (else it is rebuilt from `history()`)."""

    spiel_game: object


class ObjectBatch:
    """Generic SearchBatch over State objects (clone + apply per leaf); a MoverBatch too."""

    def __init__(self, roots: Sequence[State], capacity: int):
        self.num_trees = len(roots)
        self._nodes: list[list[State | None]] = [
            [root.clone()] + [None] * (capacity - 1) for root in roots
        ]

    def observe_roots(self, obs_out: np.ndarray, mask_out: np.ndarray) -> None:
        for b, nodes in enumerate(self._nodes):
            state = nodes[0]
            obs_out[b] = state.observation()
            mask_out[b] = state.legal_mask()

    def expand(self, leaf_tree, leaf_parent, leaf_node, leaf_action,
               obs_out, mask_out, reward_out, terminal_out) -> None:
        for l in range(len(leaf_tree)):
            node = int(leaf_node[l])
            if node < 0:
                continue
            nodes = self._nodes[int(leaf_tree[l])]
            state = nodes[int(leaf_parent[l])].clone()
            reward_out[l] = state.apply(int(leaf_action[l]))
            nodes[node] = state
            terminal = state.is_terminal()
            terminal_out[l] = terminal
            if terminal:
                mask_out[l] = False
                obs_out[l] = 0.0
            else:
                obs_out[l] = state.observation()
                mask_out[l] = state.legal_mask()

    def players_to_move(self, trees, nodes, out) -> None:
        """See `MoverBatch.players_to_move`: each node's `State.to_play()`."""
        for l in range(len(trees)):
            node = int(nodes[l])
            if node >= 0:
                out[l] = self._nodes[int(trees[l])][node].to_play()
