"""Tests that need an optional extra skip with a reason naming it when it is missing.

The README's test command (`pip install -e '.[dev]'`) installs every extra the
suite uses, so they run there; a narrower install skips them and says why.
"""

from __future__ import annotations

import pytest

EXTRAS = {"ray": "ray", "ale_py": "atari", "gymnasium": "gym", "chess": "dev"}
"""Module -> the extra of pyproject.toml that installs it."""


def need(module: str):
    """The module, or a skip naming the extra that installs it."""
    extra = EXTRAS[module]
    return pytest.importorskip(module, reason=f"needs {module}, from the '{extra}' extra: "
                                              f"pip install -e '.[{extra}]'")
