"""SwooshR and SwooshL (Zipformer paper, eq. 5-6) with a memory-saving backward.

SwooshR(x) = log(1 + exp(x - 1)) - 0.08 x - 0.313261687
SwooshL(x) = log(1 + exp(x - 4)) - 0.08 x - 0.035
Their derivative, sigmoid(x - offset) - 0.08, lies in (-0.08, 0.92): the forward pass stores it as
one byte per element instead of keeping the float input (4x less activation memory), at a gradient
error of at most 1/510 (a test checks it against autograd of the formula).

Half-precision inputs (autocast) are computed in float32 and rounded once at the end, as upstream's
kernels do: near 0 the formula subtracts nearly equal constants (0.3133), which in bf16 would leave
an absolute error of ~1e-3 on outputs that are often smaller than that (the stem's, at init).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["SwooshL", "SwooshR", "swoosh_l", "swoosh_r"]


def _wide(x: torch.Tensor) -> torch.Tensor:
    """x in float32 if it is in a half type, else as it is."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _reference(x: torch.Tensor, offset: float, constant: float) -> torch.Tensor:
    xf = _wide(x)
    return (nn.functional.softplus(xf - offset) - 0.08 * xf - constant).to(x.dtype)


class _Swoosh(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, offset: float, constant: float) -> torch.Tensor:
        with torch.no_grad():
            xf = _wide(x)
            shifted = xf - offset
            # derivative + 0.08 = sigmoid(x - offset) in (0, 1): 255 steps of one byte.
            ctx.save_for_backward(torch.sigmoid(shifted).mul_(255.0).round_().to(torch.uint8))
            return nn.functional.softplus(shifted).sub_(xf, alpha=0.08).sub_(constant).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (code,) = ctx.saved_tensors
        derivative = code.to(grad.dtype).mul_(1.0 / 255.0).sub_(0.08)
        return grad * derivative, None, None


def swoosh_r(x: torch.Tensor) -> torch.Tensor:
    if not x.requires_grad:
        return _reference(x, 1.0, 0.313261687)
    out: torch.Tensor = _Swoosh.apply(x, 1.0, 0.313261687)  # type: ignore[no-untyped-call]
    return out


def swoosh_l(x: torch.Tensor) -> torch.Tensor:
    if not x.requires_grad:
        return _reference(x, 4.0, 0.035)
    out: torch.Tensor = _Swoosh.apply(x, 4.0, 0.035)  # type: ignore[no-untyped-call]
    return out


class SwooshR(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh_r(x)


class SwooshL(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return swoosh_l(x)
