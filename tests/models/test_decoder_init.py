"""The tag decoder starts uniform: cross-entropy at initialisation is close to ln V.

Invariant: for targets drawn independently of the logits, E[CE] = E[logsumexp(z)] - mean(z) >= ln V,
with equality for a uniform prediction. A decoder whose tied output layer has N(0, 1) rows (torch's
`nn.Embedding` default) starts at CE ~ 25 (d=32) to ~ 310 (d=768) on BART's vocabulary; BART's
init (N(0, 0.02)) keeps the logits' spread at 0.02 * sqrt(d) and the CE within a few percent of
ln V. Sizes: the smoke and demo presets' decoders and the paper's BART-base decoder, on BART's
vocabulary (50265) and on the WordPiece one the tests' tokenizer has (30522).
"""

from __future__ import annotations

import math

import pytest
import torch

from uts.models.decoder import TagDecoder
from uts.objectives.generative import Generative, SpecialTokens
from uts.train.config import PRESETS, PretrainConfig

ENCODER_DIM = 16
PAPER = PretrainConfig()
SIZES = {
    "smoke": tuple(PRESETS["smoke"][k] for k in ("decoder_dim", "decoder_layers", "decoder_heads")),
    "demo": tuple(PRESETS["demo"][k] for k in ("decoder_dim", "decoder_layers", "decoder_heads")),
    "bart-base": (PAPER.decoder_dim, PAPER.decoder_layers, PAPER.decoder_heads),
}


def special_tokens(vocab_size: int) -> SpecialTokens:
    # BART's layout: <s>=0 <pad>=1 </s>=2 <unk>=3 ... <mask>=V-1.
    return SpecialTokens(pad=1, bos=0, eos=2, mask=vocab_size - 1, vocab_size=vocab_size)


def decoder(size: str, vocab_size: int) -> TagDecoder:
    dim, layers, heads = SIZES[size]
    torch.manual_seed(0)
    return TagDecoder(vocab_size, ENCODER_DIM, dim=dim, layers=layers, heads=heads, pad_id=1).eval()


def ce_at_init(model: TagDecoder, mode: str) -> float:
    """Token CE of `mode` on random tag ids (B=8, L<=16) and random encoder frames (B, 24, 16)."""
    vocab = model.tokens.num_embeddings
    special = special_tokens(vocab)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(4, vocab - 1, (8, 16), generator=generator)  # no special tokens
    id_lens = torch.tensor([16, 12, 9, 7, 5, 3, 2, 1])
    frames = torch.randn(8, 24, ENCODER_DIM, generator=generator)
    frame_lens = torch.tensor([24, 20, 17, 12, 9, 6, 3, 1])
    objective = Generative(model, special, mode)
    with torch.no_grad():
        outputs = objective(frames, frame_lens, {"tag_ids": ids, "tag_lens": id_lens})
        loss, _ = objective.loss({}, outputs)
    return float(loss)


@pytest.mark.parametrize("vocab_size", [50265, 30522])
@pytest.mark.parametrize("size", ["smoke", "demo", "bart-base"])
def test_ce_at_init_is_within_ten_percent_of_ln_v(size: str, vocab_size: int) -> None:
    model = decoder(size, vocab_size)
    uniform = math.log(vocab_size)
    for mode in ("ar", "par"):
        ce = ce_at_init(model, mode)
        assert abs(ce - uniform) <= 0.1 * uniform, (
            f"{size} {mode}: CE {ce:.2f} vs ln V {uniform:.2f}"
        )


def test_embeddings_follow_bart_init_and_stay_tied() -> None:
    model = decoder("demo", 1000)
    tokens = model.tokens.weight.detach()
    assert model.out.weight is model.tokens.weight  # tied input/output embeddings, as BART
    assert torch.count_nonzero(tokens[1]) == 0  # the padding row stays zero
    real = torch.cat([tokens[:1], tokens[2:]])
    assert float(real.std()) == pytest.approx(0.02, rel=0.05)
    assert float(model.positions.weight.std()) == pytest.approx(0.02, rel=0.1)
