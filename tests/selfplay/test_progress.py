"""Training progress off a terminal: plain lines, not a thousand carriage returns."""

from __future__ import annotations

import io
import subprocess
import sys

from selfplay.progress import LogLines, training_progress
from tests.conftest import REPO
from tests.selfplay.util import TINY


def _run(lines: LogLines, iterations: int) -> list[str]:
    for i in range(iterations):
        lines.update(1)
        lines.set_postfix_str(f"loss {i}")
    return lines.stream.getvalue().splitlines()


def test_one_line_per_interval_and_always_the_last():
    every = _run(LogLines(5, 0, "train x", io.StringIO(), interval=0.0), 5)
    assert [line.split(",")[0] for line in every] == [
        f"train x: iteration {i}/5" for i in range(1, 6)]
    assert every[-1].endswith("loss 4")
    rare = _run(LogLines(5, 0, "train x", io.StringIO(), interval=1e9), 5)
    assert [line.split(",")[0] for line in rare] == ["train x: iteration 1/5",
                                                     "train x: iteration 5/5"]
    open_ended = _run(LogLines(None, 7, "train x", io.StringIO(), interval=1e9), 3)
    assert [line.split(",")[0] for line in open_ended] == ["train x: iteration 8"]


def test_a_terminal_gets_the_bar_a_file_gets_lines():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert isinstance(training_progress(3, 0, "t", True, io.StringIO()), LogLines)
    assert not isinstance(training_progress(3, 0, "t", True, Terminal()), LogLines)
    assert not isinstance(training_progress(3, 0, "t", False, io.StringIO()), LogLines)


def test_train_into_a_log_file_writes_plain_lines(tmp_path):
    log = tmp_path / "run.log"
    with open(log, "wb") as out:  # as `tabula train > run.log 2>&1`
        done = subprocess.run([sys.executable, "-m", "tabula", "train", "--game", "tictactoe",
                               "--run", str(tmp_path / "run"), *TINY, "--iterations", "3"],
                              cwd=REPO, stdout=out, stderr=subprocess.STDOUT, timeout=600)
    assert done.returncode == 0
    text = log.read_text()
    assert "\r" not in text and "\x1b" not in text, text
    lines = text.splitlines()
    assert any(line.startswith("train tictactoe: iteration 3/3, ") for line in lines), text
    assert lines[-2].startswith("trained 3 iterations")
