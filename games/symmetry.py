"""Board symmetries for data augmentation, shared by the board games.

Each function transforms observations spatially (last two axes are rows and
columns) and permutes the policy the same way, returning new arrays.
"""

from __future__ import annotations

import numpy as np

from games.base import GameError

NUM_DIHEDRAL = 8


def _dihedral_planes(k: int, x: np.ndarray) -> np.ndarray:
    """Symmetry k of the dihedral group on the last two (square) axes.

    k % 4 counter-clockwise quarter turns, then a transpose when k >= 4.
    """
    x = np.rot90(x, k % 4, axes=(-2, -1))
    if k >= 4:
        x = np.swapaxes(x, -2, -1)
    return np.array(x, order="C", copy=True)  # rot90 by 0 returns the input itself


def dihedral(
    k: int, obs: np.ndarray, policy: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Applies dihedral symmetry k to a square board.

    Actions [0, size*size) are cells in row-major order matching the
    observation's rows and columns; any later actions (e.g. Go's pass) are
    left in place.

    Args:
      k: symmetry index in [0, 8), 0 = identity.
      obs: float32[N, C, size, size].
      policy: float32[N, A] with A >= size*size.
    Returns:
      (obs, policy), new arrays of the same shapes and dtypes.
    """
    if not 0 <= k < NUM_DIHEDRAL:
        raise GameError(f"dihedral symmetry index must be in [0, 8), got {k}")
    n = policy.shape[0]
    cells = size * size
    new_obs = _dihedral_planes(k, obs)
    new_policy = policy.copy()
    board = policy[:, :cells].reshape(n, size, size)
    new_policy[:, :cells] = _dihedral_planes(k, board).reshape(n, cells)
    return new_obs, new_policy


def mirror_columns(
    k: int, obs: np.ndarray, policy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Symmetry k in {0: identity, 1: left-right mirror} for column actions.

    Args:
      k: 0 or 1.
      obs: float32[N, C, H, W].
      policy: float32[N, W], one action per column.
    Returns:
      (obs, policy), new arrays of the same shapes and dtypes.
    """
    if k == 0:
        return obs.copy(), policy.copy()
    if k == 1:
        return (np.array(obs[..., ::-1], order="C", copy=True),
                np.array(policy[:, ::-1], order="C", copy=True))
    raise GameError(f"mirror symmetry index must be 0 or 1, got {k}")


def identity_only(name: str, k: int, obs: np.ndarray,
                  policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The identity, for games with one symmetry (environments); k must be 0.

    Args:
      name: the game's name, for the error.
      k: 0.
      obs, policy: returned as they are.
    Raises:
      GameError: k is not 0.
    """
    if k != 0:
        raise GameError(f"{name} has 1 symmetry, got index {k}")
    return obs, policy
