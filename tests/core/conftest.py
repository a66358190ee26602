"""Fixtures the core tests share (helpers and constants live in ``tests.core.helpers``)."""

from __future__ import annotations

import pytest

from nas_core.data import SplitTensors
from tests.core.helpers import stripes


@pytest.fixture(scope="module")
def splits() -> SplitTensors:
    """Stripes: class 0 horizontal, class 1 vertical (12×12, one channel)."""
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = stripes(48, 0), stripes(16, 1), stripes(20, 2)
    return SplitTensors(classes=["horizontal", "vertical"], channels=1, height=12, width=12, mean=(0.5,), std=(0.5,),
                        train_x=train_x, train_y=train_y, val_x=val_x, val_y=val_y, test_x=test_x, test_y=test_y)
