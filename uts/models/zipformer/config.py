"""Zipformer configuration and presets (frozen, keyword-only)."""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["PRESETS", "ZipformerConfig", "preset"]


@dataclass(frozen=True, kw_only=True)
class ZipformerConfig:
    """One Zipformer: six (or any number of) stacks at their own frame rates and widths.

    Tuples have one entry per stack. Rates are relative to the stem's 50 Hz output.
    """

    num_mel_bins: int = 80
    downsampling: tuple[int, ...] = (1, 2, 4, 8, 4, 2)
    num_layers: tuple[int, ...] = (2, 2, 3, 4, 3, 2)
    dims: tuple[int, ...] = (192, 256, 384, 512, 384, 256)
    feedforward: tuple[int, ...] = (512, 768, 1024, 1536, 1024, 768)
    heads: tuple[int, ...] = (4, 4, 4, 8, 4, 4)
    conv_kernels: tuple[int, ...] = (31, 31, 15, 15, 15, 31)
    query_head_dim: int = 32
    value_head_dim: int = 12
    pos_head_dim: int = 4
    pos_emb_dim: int = 48
    stem_channels: int = 8
    dropout: float = 0.1
    layer_skip: float = 0.05  # probability of skipping a block in training (layer dropout)

    def __post_init__(self) -> None:
        per_stack = (self.num_layers, self.dims, self.feedforward, self.heads, self.conv_kernels)
        if any(len(v) != len(self.downsampling) for v in per_stack):
            raise ValueError("ZipformerConfig: every per-stack tuple needs one entry per stack")
        if any(k % 2 == 0 for k in self.conv_kernels):
            raise ValueError(f"ZipformerConfig: conv kernels must be odd, got {self.conv_kernels}")

    @property
    def output_dim(self) -> int:
        return max(self.dims)


PRESETS = {
    # Tests: tiny, fast on CPU.
    "xs": ZipformerConfig(
        num_layers=(1, 1, 1, 1, 1, 1),
        dims=(48, 64, 96, 128, 96, 64),
        feedforward=(96, 128, 192, 256, 192, 128),
        heads=(2, 2, 2, 4, 2, 2),
        conv_kernels=(15, 15, 7, 7, 7, 15),
        query_head_dim=16,
        value_head_dim=8,
        pos_emb_dim=16,
    ),
    # About 22M parameters.
    "s": ZipformerConfig(
        num_layers=(2, 2, 2, 2, 2, 2),
        dims=(192, 256, 256, 256, 256, 256),
        feedforward=(512, 768, 768, 768, 768, 768),
        heads=(4, 4, 4, 8, 4, 4),
    ),
    # The paper's Zipformer-M.
    "m": ZipformerConfig(),
}


def preset(name: str, **overrides: object) -> ZipformerConfig:
    """A preset by name, with field overrides. Raises KeyError naming the known presets."""
    if name not in PRESETS:
        raise KeyError(f"unknown Zipformer preset {name!r}; known: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)  # type: ignore[arg-type]
