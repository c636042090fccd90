"""One torch thread for the in-process selfplay tests.

On this 2-core machine with the other core busy (a training run), two torch
threads made each tiny gradient step ~80 times slower (0.5 s instead of 7 ms).
tabula/cli.py sets OMP_WAIT_POLICY=PASSIVE for that reason, but only takes
effect before torch loads, which in a pytest session it already has.
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
