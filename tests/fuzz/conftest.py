"""Fixtures of the fuzz tests: each target opened once per module in its own directory."""

from __future__ import annotations

import pytest

from tests.fuzz.targets import TARGETS, working_directory


@pytest.fixture(scope="module")
def open_target(tmp_path_factory):
    """open_target(name) -> the target, set up in a fresh directory that is the cwd until
    the module's tests are done."""
    with working_directory(tmp_path_factory.mktemp("fuzz")) as workdir:
        opened = {}

        def get(name: str):
            if name not in opened:
                opened[name] = TARGETS[name]()
                opened[name].open(workdir)
            return opened[name]

        yield get
