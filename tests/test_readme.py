"""The README's commands are the ones CI runs: a newcomer's command must be CI's."""

from __future__ import annotations

import re

from tests.conftest import REPO


def readme_command(comment: str) -> str:
    """The command under a numbered `# N. ...` comment of the README's first code block."""
    block = re.search(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), re.S).group(1)
    lines = block.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(comment))
    return next(line for line in lines[start + 1:] if not line.startswith("#"))


def test_ci_runs_the_readmes_test_command_verbatim():
    command = readme_command("# 2. Install and run the test suite")
    assert command == "pip install torch==2.13.0 && pip install -e '.[dev]' && python -m pytest"
    ci = (REPO / ".ci" / "run").read_text().splitlines()
    assert command in ci  # a line of its own, exactly as written
    assert ci[-1] == command  # and last, so CI's verdict is the suite's


def test_dev_installs_every_extra_the_suite_imports():
    import tomllib

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    dev = {re.split(r"[<>=\[]", r)[0] for r in extras["dev"]}
    for extra in ("atari", "gym", "ray"):
        assert {re.split(r"[<>=\[]", r)[0] for r in extras[extra]} <= dev, extra
