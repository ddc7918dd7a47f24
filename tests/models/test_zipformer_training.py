"""The Zipformer's upstream training-time behaviour (icefall/Auden): bypass limits, layer drop and
its schedule over the batch count, feature masking, the conv stem, a training step under bf16
autocast with every balancer and whitening module active, and exact replays."""

from __future__ import annotations

import math

import pytest
import torch

from uts.models.zipformer import Zipformer, masked_mean, preset
from uts.models.zipformer.block import ZipformerBlock
from uts.models.zipformer.layers import Bypass
from uts.models.zipformer.scaling import Balancer, ScheduledFloat, Whiten
from uts.models.zipformer.stem import ConvNeXt, Stem


def test_bypass_scale_is_held_within_its_limits_in_training() -> None:
    bypass = Bypass(4).train()
    bypass.limit_prob = 1.0
    bypass.scale_min.batch_count = 20000.0  # type: ignore[union-attr]  # scale_min -> 0.2
    with torch.no_grad():
        bypass.scale.copy_(torch.tensor([-0.5, 0.5, 0.95, 1.5]))
    x, y = torch.zeros(3, 5, 4), torch.ones(3, 5, 4)
    out = bypass(x, y)
    assert torch.allclose(out, bypass.scale.detach().expand_as(out))  # forward: the raw scale
    (down,) = torch.autograd.grad(out.sum(), bypass.scale)  # every gradient says "lower it"
    assert down.tolist() == [-15.0, 15.0, 15.0, 15.0]  # ... except below the minimum
    (up,) = torch.autograd.grad(-bypass(x, y).sum(), bypass.scale)
    assert up.tolist() == [-15.0, -15.0, -15.0, 15.0]  # ... except above the maximum
    # An optimiser pushing the scale down keeps it at the minimum, one pushing up at the maximum.
    opt = torch.optim.SGD(bypass.parameters(), lr=0.001)  # steps of 0.015
    for sign, limit in ((1.0, 0.2), (-1.0, 1.0)):
        for _ in range(200):
            opt.zero_grad()
            (sign * bypass(x, y).sum()).backward()
            opt.step()
        assert torch.allclose(bypass.scale.detach(), torch.full((4,), limit), atol=0.02)


def test_bypass_min_follows_its_schedule_and_eval_uses_the_learned_scale() -> None:
    bypass = Bypass(2).train()
    assert float(bypass.scale_min) == 0.0  # no batch count yet: upstream's default
    bypass.scale_min.batch_count = 0.0  # type: ignore[union-attr]
    assert float(bypass.scale_min) == pytest.approx(0.9)
    bypass.scale_min.batch_count = 10000.0  # type: ignore[union-attr]
    assert float(bypass.scale_min) == pytest.approx(0.55)
    with torch.no_grad():
        bypass.scale.fill_(1.7)
    x, y = torch.zeros(1, 1, 2), torch.ones(1, 1, 2)
    assert torch.allclose(bypass.eval()(x, y), torch.full((1, 1, 2), 1.7))


def test_layer_drop_skips_clips_at_its_rate_in_training_only() -> None:
    torch.manual_seed(0)
    bypass = Bypass(3, skip_rate=0.3).train()
    scale = bypass.scale_for(20000, torch.device("cpu"))  # (B, 1, D): 0 for a skipped clip
    skipped = (scale[:, 0] == 0).all(-1).float().mean()
    assert float(skipped) == pytest.approx(0.3, abs=0.02)
    assert torch.equal(bypass.eval().scale_for(8, torch.device("cpu")), bypass.scale)
    x, y = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    assert torch.equal(Bypass(3, skip_rate=1.0).train()(x, y), x)  # every clip skips


def test_layer_drop_rate_follows_upstreams_schedule() -> None:
    model = Zipformer(preset("xs")).train()  # layer_skip=None: upstream's schedule
    n = len(model.stacks)
    rates = [stack.blocks[0].bypass.skip_rate for stack in model.stacks]
    assert [float(r) for r in rates] == [0.0] * n  # no batch count: default 0
    for i, (rate, factor) in enumerate(zip(rates, model.config.downsampling, strict=True)):
        begin, end = 4000 * (i + 1) / (n + 1), 4000 * (i + 2) / (n + 1)
        final = 0.035 * math.sqrt(factor)
        model.set_batch_count(0)
        assert float(rate) == 0.5
        model.set_batch_count((begin + end) / 2)
        assert float(rate) == pytest.approx((0.5 + final) / 2)
        model.set_batch_count(1e6)
        assert float(rate) == pytest.approx(final)
    model.eval()
    assert float(rates[3]) == 0.0
    # A fixed rate overrides the schedule; two blocks of a stack warm up one after the other.
    fixed = Zipformer(preset("xs", layer_skip=0.2))
    assert all(b.bypass.skip_rate == 0.2 for s in fixed.stacks for b in s.blocks)
    two = Zipformer(preset("xs", num_layers=(2, 1, 1, 1, 1, 1))).train()
    first, second = (b.bypass.skip_rate for b in two.stacks[0].blocks)
    two.set_batch_count(4000 / 7 * 1.5)  # the end of the first block's warm-up
    assert (float(first), float(second)) == (pytest.approx(0.035), pytest.approx(0.5))


def test_set_batch_count_reaches_every_schedule() -> None:
    model = Zipformer(preset("xs"))
    schedules = [m for m in model.modules() if isinstance(m, ScheduledFloat)]
    assert len(schedules) > 50
    model.set_batch_count(1234)
    assert model.batch_count == 1234.0
    assert all(s.batch_count == 1234.0 for s in schedules)
    model.train().set_batch_count(0)
    block: ZipformerBlock = model.stacks[0].blocks[0]
    assert float(block.ff1.dropout.p) == pytest.approx(0.3)  # dropout 0.3 -> 0.1 over 20k
    assert float(block.conv_skip_rate) == pytest.approx(0.2)
    model.set_batch_count(None)
    assert float(block.ff1.dropout.p) == 0.0
    assert float(Zipformer(preset("xs", dropout=0.1)).stacks[0].blocks[0].ff1.dropout.p) == 0.1


def test_feature_masks_zero_channels_beyond_the_unmasked_width_per_clip() -> None:
    torch.manual_seed(0)
    model = Zipformer(preset("xs")).train()
    masks = model.feature_masks(torch.zeros(20000, 5, 48))
    for mask, dim, kept in zip(masks, model.config.dims, model.config.unmasked_dims, strict=True):
        assert isinstance(mask, torch.Tensor) and mask.shape == (20000, 1, dim)
        assert (mask[..., :kept] == 1).all()
        if kept == dim:
            continue
        middle = kept + (dim - kept) // 2
        first, second = (mask[:, 0, middle - 1] == 0), (mask[:, 0, -1] == 0)
        assert float(first.float().mean()) == pytest.approx(0.125, abs=0.01)
        assert float(second.float().mean()) == pytest.approx(1 - 0.875**2, abs=0.01)
        assert bool((second | ~first).all())  # the wider mask covers the narrower one
    assert model.eval().feature_masks(torch.zeros(2, 5, 48)) == [1.0] * 6


@pytest.mark.parametrize("frames", [1, 2, 7, 100, 1001])
def test_stem_output_shape_and_padding(frames: int) -> None:
    torch.manual_seed(0)
    stem = Stem(80, 2, 48).eval()
    x = torch.randn(2, frames, 80)
    short = max(1, frames // 3)
    x[1, short:] = 0.0
    out = stem(x, torch.tensor([frames, short]))
    assert out.shape == (2, (frames + 1) // 2, 48)
    alone = stem(x[1:, :short], torch.tensor([short]))
    assert torch.allclose(out[1, : (short + 1) // 2], alone[0], rtol=1e-4, atol=1e-4)


def test_stem_has_upstreams_layout() -> None:
    stem = Stem(80, 8, 192)
    channels = [(c.in_channels, c.out_channels) for c in (stem.conv1, stem.conv2, stem.conv3)]
    assert channels == [(1, 8), (8, 32), (32, 128)]
    assert stem.out.in_features == 128 * 19  # ((80 - 1) // 2 - 1) // 2 frequency bins
    assert sum(p.numel() for p in stem.parameters()) == 611_953  # upstream's Conv2dSubsampling
    assert stem(torch.zeros(1, 1000, 80), torch.tensor([1000])).shape == (1, 500, 192)


def test_convnext_layer_drop_follows_its_schedule() -> None:
    torch.manual_seed(0)
    block = ConvNeXt(4).train()
    x = torch.randn(4000, 4, 3, 3)
    assert float(block.layer_skip) == 0.0
    block.layer_skip.batch_count = 0.0
    y = block(x)
    skipped = (y == x).flatten(1).all(1).float().mean()
    assert float(skipped) == pytest.approx(0.2, abs=0.03)
    block.layer_skip.batch_count = 20000.0
    assert float(block.layer_skip) == pytest.approx(0.015)


def force_every_constraint(model: torch.nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, Balancer):
            module.prob = ScheduledFloat((0.0, 1.0), default=1.0)
        if isinstance(module, Whiten):
            module.min_prob = module.max_prob = module.prob = 1.0
            # always over the limit: the penalty always acts
            module.whitening_limit = ScheduledFloat((0.0, 1.0), default=1.0)


@pytest.mark.parametrize("count", [None, 0, 3000, 50000])
def test_training_step_under_bf16_autocast_with_every_constraint_active(count: int | None) -> None:
    torch.manual_seed(0)
    model = Zipformer(preset("xs")).train()
    model.set_batch_count(count)
    force_every_constraint(model)
    x, lengths = torch.randn(3, 160, 80), torch.tensor([160, 120, 77])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, out_lengths = model(x, lengths)
        loss = masked_mean(out, out_lengths).float().pow(2).mean()
    loss.backward()
    assert out.shape == (3, 40, 128) and out_lengths.tolist() == [40, 30, 20]
    # every parameter gets a finite gradient, even when modules are skipped (DDP needs no
    # find_unused_parameters)
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and g.isfinite().all() for g in grads)


def test_bf16_autocast_stays_close_to_fp32() -> None:
    torch.manual_seed(0)
    model = Zipformer(preset("xs")).eval()
    x, lengths = torch.randn(2, 80, 80), torch.tensor([80, 60])
    with torch.no_grad():
        reference = model(x, lengths)[0]
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = model(x, lengths)[0].float()
    relative = (half - reference).pow(2).mean().sqrt() / reference.pow(2).mean().sqrt()
    assert float(relative) < 0.02  # bf16 round-off, not the stem's tiny activations cancelling


def test_the_output_has_no_final_norm_and_the_first_stack_no_bypass() -> None:
    model = Zipformer(preset("xs"))
    assert not hasattr(model, "norm")  # upstream's Zipformer2 ends with the downsampling
    assert model.stacks[0].bypass is None and model.stacks[0].downsample is None
    assert all(s.bypass is not None for s in list(model.stacks)[1:])


def test_a_training_step_replays_exactly_from_the_seed_and_the_state_dict() -> None:
    """Every random choice (dropout, layer drop, balancer/whitening draws) follows torch's seed, and
    the whitening modules' adaptive state travels in the state_dict, so a resumed run repeats."""
    torch.manual_seed(0)
    model = Zipformer(preset("xs")).train()
    model.set_batch_count(500)
    x, lengths = torch.randn(2, 120, 80), torch.tensor([120, 90])

    def grads(m: Zipformer) -> list[torch.Tensor]:
        torch.manual_seed(3)
        out, n = m(x, lengths)
        return list(torch.autograd.grad(masked_mean(out, n).pow(2).mean(), list(m.parameters())))

    grads(model)  # moves some whitening modules to their low probability
    state = model.state_dict()
    probs = {k: float(v) for k, v in state.items() if k.endswith("whiten.prob")}
    assert probs and set(probs.values()) <= {0.025, 0.25}
    copy = Zipformer(preset("xs")).train()
    copy.load_state_dict(state)
    copy.set_batch_count(500)
    assert all(torch.equal(a, b) for a, b in zip(grads(model), grads(copy), strict=True))
