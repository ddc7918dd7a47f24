"""The Zipformer encoder: sizes (against Auden's), shapes, padding invariance, determinism,
activations, SpecAugment."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

from uts.models.heads import MTCHead
from uts.models.specaug import SpecAugment
from uts.models.zipformer import Zipformer, masked_mean, parameter_count, preset
from uts.models.zipformer.activations import swoosh_l, swoosh_r
from uts.models.zipformer.layers import BiasNorm


def parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Compared against Auden's own Zipformer (AudenAI/Auden src/auden/models/zipformer, instantiated with
# the same configs: ZipformerEncoderModel with Conv2dSubsampling(channels c, 4c, 16c)): Auden counts
# xs 1,100,957, s 21,989,779 and m 65,913,719, each including one unused `bypass_scale` vector per
# layer (496 / 2,944 / 5,760 parameters, "TODO: remove it" upstream), which we leave out.
@pytest.mark.parametrize(
    ("name", "count"), [("xs", 1_100_461), ("s", 21_986_835), ("m", 65_907_959)]
)
def test_preset_parameter_counts(name: str, count: int) -> None:
    model = Zipformer(preset(name))
    assert parameters(model) == count == parameter_count(preset(name))
    if name == "m":  # the paper's Zipformer-M: about 65.9M, 66.2M with an MTC head at K=527
        assert 66.1e6 < count + parameters(MTCHead(model.output_dim, 527)) < 66.3e6
    if name == "xs":
        assert count < 1.5e6


@pytest.fixture(scope="module")
def xs() -> Zipformer:
    torch.manual_seed(0)
    return Zipformer(preset("xs")).eval()


@pytest.mark.parametrize("frames", [1, 2, 7, 99, 200, 1001])
def test_output_shapes_and_lengths(xs: Zipformer, frames: int) -> None:
    out, lengths = xs(torch.randn(2, frames, 80), torch.tensor([frames, max(1, frames // 3)]))
    expected = ((frames + 1) // 2 + 1) // 2  # 100 Hz -> 50 Hz stem -> 25 Hz output
    assert out.shape == (2, expected, xs.output_dim)
    assert lengths.tolist() == [expected, ((max(1, frames // 3) + 1) // 2 + 1) // 2]
    assert out[1, lengths[1] :].abs().sum() == 0  # padding frames are zero


def test_ten_seconds_give_250_frames(xs: Zipformer) -> None:
    out, lengths = xs(torch.randn(1, 1000, 80), torch.tensor([1000]))
    assert out.shape[1] == lengths.item() == 250


def test_padding_does_not_change_a_clip_in_eval(xs: Zipformer) -> None:
    torch.manual_seed(1)
    short, long = torch.randn(1, 137, 80), torch.randn(1, 410, 80)
    batch = torch.cat(
        [torch.nn.functional.pad(short, (0, 0, 0, 410 - 137), value=3.0), long]
    )  # junk padding
    # float64: the clip's frames agree to round-off (~1e-14). float32: up to ~1e-4, because the
    # stem ends, as upstream's, in a BiasNorm (log-scale 1) that scales its tiny initial
    # activations, and their round-off, up to an RMS of about e.
    for model, dtype, tol in ((copy.deepcopy(xs).double(), torch.float64, 1e-10), (xs, None, 1e-4)):
        alone, alone_len = model(short.to(dtype), torch.tensor([137]))
        together, together_len = model(batch.to(dtype), torch.tensor([137, 410]))
        n = int(alone_len)
        assert int(together_len[0]) == n
        assert torch.allclose(together[0, :n], alone[0, :n], rtol=tol, atol=tol)
        assert torch.allclose(
            model.embed(batch.to(dtype), torch.tensor([137, 410]))[0],
            model.embed(short.to(dtype), torch.tensor([137]))[0],
            rtol=tol,
            atol=tol,
        )


def test_layer_embeddings_are_every_depth_pooled_and_end_with_the_output(xs: Zipformer) -> None:
    torch.manual_seed(2)
    feats, lengths = torch.randn(2, 300, 80), torch.tensor([300, 123])
    caught: list[torch.Tensor] = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: caught.append(o)) for m in (xs.stem, *xs.stacks)
    ]
    try:
        out, out_lengths = xs(feats, lengths)
    finally:
        for hook in hooks:
            hook.remove()
    stem_lengths = (lengths + 1) // 2
    reference = torch.cat(
        [*(masked_mean(x, stem_lengths) for x in caught), masked_mean(out, out_lengths)], -1
    )
    got = xs.layer_embeddings(feats, lengths)
    assert got.shape == (2, xs.layers_dim) == (2, 48 + sum((48, 64, 96, 128, 96, 64)) + 128)
    assert torch.allclose(got, reference, atol=1e-6)
    assert torch.allclose(got[:, -xs.output_dim :], xs.embed(feats, lengths), atol=1e-6)
    assert list(xs.layer_widths) == ["stem", *(f"stack{i}" for i in range(1, 7)), "final"]
    # the short clip's layer means do not see its batch's padding
    alone = xs.layer_embeddings(feats[1:, :123], lengths[1:])
    assert torch.allclose(got[1], alone[0], atol=1e-5)


def test_eval_is_deterministic_and_train_is_not() -> None:
    torch.manual_seed(0)
    model = Zipformer(preset("xs", layer_skip=0.5))
    x, lengths = torch.randn(2, 120, 80), torch.tensor([120, 80])
    model.eval()
    torch.manual_seed(1)
    first = model(x, lengths)[0]
    torch.manual_seed(2)
    assert torch.equal(model(x, lengths)[0], first)
    model.train()
    torch.manual_seed(1)
    a = model(x, lengths)[0]
    torch.manual_seed(2)
    assert not torch.equal(model(x, lengths)[0], a)


def test_layer_skipping_happens_in_training_only() -> None:
    torch.manual_seed(0)
    model = Zipformer(preset("xs", layer_skip=1.0, dropout=0.0))
    x = torch.randn(1, 64, 80)
    stack = model.stacks[0]
    hidden = torch.randn(1, 32, model.config.dims[0])
    stack.train()
    assert torch.equal(
        stack(hidden, torch.tensor([32])), hidden
    )  # every block skipped: bypass(x, x) = x
    stack.eval()
    assert not torch.equal(stack(hidden, torch.tensor([32])), hidden)
    assert model.eval()(x, torch.tensor([64]))[0].isfinite().all()


@pytest.mark.parametrize(
    ("fn", "offset", "constant"), [(swoosh_r, 1.0, 0.313261687), (swoosh_l, 4.0, 0.035)]
)
def test_swoosh_forward_and_compact_backward(fn: object, offset: float, constant: float) -> None:
    x = torch.linspace(-12, 12, 2001, requires_grad=True)
    reference = torch.nn.functional.softplus(x - offset) - 0.08 * x - constant
    (expected,) = torch.autograd.grad(reference.sum(), x)
    y = fn(x)  # type: ignore[operator]
    assert torch.allclose(y, reference.detach(), atol=1e-6)
    (got,) = torch.autograd.grad(y.sum(), x)
    assert (got - expected).abs().max() <= 1.0 / 510 + 1e-6  # one byte per element


def test_bias_norm_gives_rms_e_at_init() -> None:
    norm = BiasNorm(16)  # upstream starts the log-scale at 1: output RMS e
    y = norm(torch.randn(4, 10, 16) * 7 + 3)
    assert torch.allclose(y.pow(2).mean(-1), torch.full((4, 10), math.e**2), rtol=1e-3)


def test_masked_mean_and_mtc_head_ignore_padding() -> None:
    x = torch.randn(2, 5, 3)
    lengths = torch.tensor([5, 2])
    assert torch.allclose(masked_mean(x, lengths)[1], x[1, :2].mean(0))
    head = MTCHead(3, 4).eval()
    noisy = x.clone()
    noisy[1, 2:] = 100.0
    assert torch.allclose(head(noisy, lengths), head(x, lengths))
    assert torch.allclose(head(x, lengths)[1], head.linear(x[1, :2]).mean(0))


def test_specaugment_masks_in_training_only() -> None:
    torch.manual_seed(0)
    aug = SpecAugment(
        freq_masks=2, freq_width=10, time_masks=3, time_width=20, time_width_ratio=0.2
    )
    feats, lengths = torch.ones(4, 200, 80), torch.tensor([200, 150, 100, 50])
    assert torch.equal(aug.eval()(feats, lengths), feats)
    masked = aug.train()(feats, lengths)
    assert (masked == 0).any() and (masked == 1).any()
    zero_bins = (masked == 0).all(dim=1)  # (B, F): bins zero in every frame are frequency masks
    assert zero_bins.sum(dim=1).max() <= 2 * 10
    for row, n in enumerate(lengths.tolist()):
        zero_frames = (masked[row] == 0).all(dim=1)
        assert zero_frames.sum() <= 3 * min(20, int(n * 0.2))


def test_checkpoint_round_trip_is_bit_exact(xs: Zipformer) -> None:
    buffer = io.BytesIO()
    torch.save(xs.state_dict(), buffer)
    buffer.seek(0)
    copy = Zipformer(preset("xs")).eval()
    copy.load_state_dict(torch.load(buffer, weights_only=True))
    x, lengths = torch.randn(2, 90, 80), torch.tensor([90, 61])
    assert torch.equal(copy(x, lengths)[0], xs(x, lengths)[0])
    assert all(
        torch.equal(a, b)
        for a, b in zip(copy.state_dict().values(), xs.state_dict().values(), strict=True)
    )


def test_xs_training_step_is_fast_enough_to_test_with() -> None:
    model = Zipformer(preset("xs")).train()
    x, lengths = torch.randn(2, 200, 80), torch.tensor([200, 200])  # 2 x 2 s
    out, out_lengths = model(x, lengths)
    masked_mean(out, out_lengths).pow(2).mean().backward()
    assert all(p.grad is not None for p in model.stem.parameters())
