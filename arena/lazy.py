"""Lazy re-exports (PEP 562) for the `__init__` of arena and its subpackages.

A package lists its public names as a table name -> module; a name's module is
imported on first use, so `from arena import TextSession` imports
arena.protocols.text and not every heavy dependency of the package.
"""

from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]
                 ) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` of `package`, which re-exports `exports`.

    Args:
      package: the package's module name (its `__name__`).
      exports: public name -> module that defines it.
    """

    def getattr_(name: str):
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # the next lookup skips __getattr__
        return value

    def dir_() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return getattr_, dir_
