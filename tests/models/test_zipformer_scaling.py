"""The Zipformer's training-time gradient tools (uts.models.zipformer.scaling) against their
properties: identity forward, gradients changed only where a constraint is violated (and then in
the direction that repairs it), nothing in eval, and bf16/fp16 inputs."""

from __future__ import annotations

import pytest
import torch

from uts.models.zipformer.scaling import (
    Balancer,
    ScaleGrad,
    ScheduledFloat,
    SharedDropout,
    Whiten,
    limit_param_value,
    penalize_abs_values_gt,
    whitening_metric,
)


def grad_through(module: torch.nn.Module, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """d(sum(module(x) * g))/dx, checking the forward is the identity."""
    x = x.detach().clone().requires_grad_(True)
    y = module(x)
    assert torch.equal(y, x)
    (grad,) = torch.autograd.grad(y, x, g)
    return grad


def test_scheduled_float_is_piecewise_linear_in_the_batch_count() -> None:
    s = ScheduledFloat((0.0, 0.3), (100.0, 0.1), (200.0, 0.0), default=0.05)
    assert float(s) == 0.05  # no batch count yet
    s.batch_count = 50.0
    assert float(s) == pytest.approx(0.2)
    s.batch_count = 150.0
    assert float(s) == pytest.approx(0.05)
    s.batch_count = -5.0
    assert float(s) == 0.3
    s.batch_count = 1e6
    assert float(s) == 0.0
    assert float(s.eval()) == 0.05  # eval: the default
    with pytest.raises(ValueError, match="increasing"):
        ScheduledFloat((1.0, 0.0), (1.0, 1.0))


def violating_batch() -> torch.Tensor:
    """(N, 3): channel 0 satisfies the default limits; 1 is always positive (sign balance 1.0 >
    max_positive 0.95); 2 is tiny (mean |x| 0.008 < min_abs 0.2)."""
    torch.manual_seed(0)
    x = torch.randn(2000, 3)
    x[:, 1] = x[:, 1].abs() + 3.0
    x[:, 2] *= 0.01
    return x


def test_balancer_changes_only_violating_channels_and_pushes_them_back() -> None:
    x = violating_batch()
    g = torch.randn_like(x)
    balancer = Balancer(3, -1, prob=1.0).train()
    grad = grad_through(balancer, x, g)
    assert torch.equal(grad[:, 0], g[:, 0])  # within limits: untouched
    extra = grad - g
    assert extra[:, 1].sum() > 0  # descent lowers the all-positive channel's mean
    # the tiny channel is pushed to grow: descent moves each x along -extra, away from 0
    assert (extra[:, 2] * x[:, 2]).sum() < 0
    # the push is sized by the gradient: |extra| <= |g| * (a few x grad_scale)
    assert (extra.abs() <= g.abs() * 0.04 * 50).all()


def test_balancer_matches_upstreams_formulation() -> None:
    """The push equals the gradient of upstream's loss (|mean/std excess| + |log RMS excess|,
    autograd through x), normalised to RMS grad_scale per channel and scaled by |g|."""
    torch.manual_seed(0)
    x = torch.randn(8, 6, 50)
    x[:, 1] = x[:, 1].abs() + 2
    x[:, 2] *= 0.01
    x[:, 3] *= 200
    x[:, 4] = -x[:, 4].abs() - 1
    g = torch.randn_like(x)
    balancer = Balancer(6, 1, prob=1.0).train()
    low_mean, high_mean, low_rms, high_rms = balancer.limits()
    xr = x.clone().requires_grad_(True)
    square, mean = xr.pow(2).mean((0, 2), keepdim=True), xr.mean((0, 2), keepdim=True)
    ratio = mean / (square - mean**2).sqrt()
    rms = square.sqrt()
    loss = (ratio - ratio.clamp(low_mean, high_mean)).abs()
    loss = loss + (rms.clamp(low_rms, high_rms) / rms).log().abs()
    (push,) = torch.autograd.grad(loss.sum(), xr)
    push = push * (0.04 / push.pow(2).mean((0, 2), keepdim=True).sqrt().clamp(min=1e-20))
    expected = g + g.abs() * push
    assert torch.allclose(grad_through(balancer, x, g), expected, atol=1e-6)


def test_balancer_is_a_no_op_in_eval_without_grad_or_when_not_drawn() -> None:
    x, g = violating_batch(), torch.randn(2000, 3)
    assert torch.equal(grad_through(Balancer(3, -1, prob=1.0).eval(), x, g), g)
    assert torch.equal(grad_through(Balancer(3, -1, prob=0.0).train(), x, g), g)
    y = Balancer(3, -1, prob=1.0).train()(x)  # no grad: the same tensor back
    assert y is x


def test_balancer_limits_follow_their_schedules() -> None:
    balancer = Balancer(4, 1, min_abs=ScheduledFloat((0.0, 0.0), (4000.0, 0.2))).train()
    for module in balancer.modules():
        if isinstance(module, ScheduledFloat):
            module.batch_count = 2000.0
    assert balancer.limits()[2] == pytest.approx(0.1 * 1.25331413732)
    assert float(balancer.prob) == pytest.approx(0.5 + (0.125 - 0.5) * 2000 / 8000)


def test_whiten_changes_the_gradient_only_above_its_limit_and_whitens() -> None:
    torch.manual_seed(0)
    white = torch.randn(4000, 8)
    collapsed = torch.randn(4000, 1) * torch.ones(1, 8) + 0.1 * torch.randn(4000, 8)
    assert whitening_metric(white, 1) < 1.1
    assert whitening_metric(collapsed, 1) > 7.0
    g = torch.randn(4000, 8)
    whiten = Whiten(1, 2.0, (0.25, 1.0), grad_scale=0.1).train()
    assert torch.equal(grad_through(whiten, white, g), g)
    assert whiten.prob == 0.25  # below the limit: checked less often
    whiten.prob = 1.0
    extra = grad_through(whiten, collapsed, g) - g
    assert whiten.prob == 1.0
    assert float(extra.norm()) == pytest.approx(0.1 * float(g.norm()), rel=1e-4)  # grad_scale |g|
    step = collapsed - 1.0 * extra / extra.norm()  # descent along the added term
    assert whitening_metric(step, 1) < whitening_metric(collapsed, 1)


def test_whiten_groups_and_eval() -> None:
    torch.manual_seed(0)
    x = torch.randn(1000, 8)
    x[:, 4:] *= 10  # two groups of very different variance: not white across groups
    assert whitening_metric(x, 1) > 1.5 and whitening_metric(x, 2) > 1.5
    g = torch.randn_like(x)
    assert torch.equal(grad_through(Whiten(2, 1.2, (1.0, 1.0), 0.1).eval(), x, g), g)
    assert not torch.equal(grad_through(Whiten(2, 1.2, (1.0, 1.0), 0.1).train(), x, g), g)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_balancer_and_whiten_keep_half_precision_gradients(dtype: torch.dtype) -> None:
    x = violating_batch().to(dtype)
    g = torch.randn(2000, 3).to(dtype)
    for module in (Balancer(3, -1, prob=1.0), Whiten(1, 1.0, (1.0, 1.0), 0.1)):
        grad = grad_through(module.train(), x, g)
        assert grad.dtype == dtype
        assert grad.isfinite().all() and not torch.equal(grad, g)


def test_balancer_and_whiten_under_cpu_bf16_autocast() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(3, 3)
    x = violating_batch()
    balancer, whiten = Balancer(3, -1, prob=1.0).train(), Whiten(1, 1.0, (1.0, 1.0), 0.1).train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = whiten(balancer(linear(x)))
        assert y.dtype == torch.bfloat16
        y.float().pow(2).mean().backward()
    assert linear.weight.grad is not None and linear.weight.grad.isfinite().all()


def test_limit_param_value_flips_only_gradients_that_push_further_out() -> None:
    p = torch.tensor([-1.0, 0.5, 2.0, -1.0, 2.0], requires_grad=True)
    y = limit_param_value(p, 0.0, 1.0, prob=1.0)
    (grad,) = torch.autograd.grad(y, p, torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0]))
    # below 0 with a positive gradient (descent would lower it): flipped; above 1 with a
    # negative one: flipped; inside, or already pointing back: unchanged
    assert grad.tolist() == [-1.0, 1.0, 1.0, -1.0, 1.0]
    assert limit_param_value(p, 0.0, 1.0, training=False) is p


def test_scale_grad_penalty_and_shared_dropout() -> None:
    x = torch.tensor([-30.0, 1.0, 30.0], requires_grad=True)
    (grad,) = torch.autograd.grad(ScaleGrad(0.2).train()(x), x, torch.ones(3))
    assert torch.allclose(grad, torch.full((3,), 0.2))
    (grad,) = torch.autograd.grad(penalize_abs_values_gt(x, 25.0, 1e-4), x, torch.ones(3))
    assert torch.allclose(grad, torch.tensor([1.0 - 1e-4, 1.0, 1.0 + 1e-4]))
    torch.manual_seed(0)
    dropout = SharedDropout(0.5, shared_dim=1).train()
    y = dropout(torch.ones(64, 10, 8))
    assert (y == y[:, :1]).all()  # one mask for every frame of a clip
    assert set(y.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(dropout.eval()(torch.ones(2, 3, 4)), torch.ones(2, 3, 4))
