"""A tiny ``nn.Sequential`` for the ``ppopt profile`` tests (imported by name: module:function)."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

BATCH, WIDTH = 4, 8


def tiny() -> tuple[nn.Module, torch.Tensor]:
    """Four layers, one without parameters; the example input is a float batch."""
    torch.manual_seed(0)
    model = nn.Sequential(
        OrderedDict(
            embed=nn.Linear(WIDTH, 16),
            act=nn.Tanh(),
            block=nn.Linear(16, 16),
            head=nn.Linear(16, 2),
        )
    )
    return model, torch.randn(BATCH, WIDTH)


def not_a_pair() -> nn.Module:
    """A factory returning the wrong thing."""
    return nn.Linear(2, 2)
