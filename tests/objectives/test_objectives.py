"""Each objective against a naive reference, PAR's missing language prior, gathered negatives,
multi-task composition, and memorisation of a tiny batch by the xs encoder."""

from __future__ import annotations

import math
from typing import Any

import pytest
import torch

from tests.objectives.conftest import tag_batch
from uts.models.decoder import TagDecoder
from uts.models.text import TextTower
from uts.models.zipformer import Zipformer, preset
from uts.objectives import MTC, Contrastive, Generative, MultiTask, Pretrainer, SpecialTokens
from uts.objectives.generative import IGNORE, ar_io, par_io
from uts.train import Eden, ScaledAdam, build_optimizer, train_step

TAGS = ["speech, male, voice", "music, guitar", "water, splash, outdoor", "drum, percussion, loud"]


@pytest.fixture(scope="module")
def text_tower(minilm_path: str) -> TextTower:
    return TextTower(minilm_path, max_tokens=16)


def small_decoder(tokenizer: Any, encoder_dim: int) -> TagDecoder:
    torch.manual_seed(0)
    return TagDecoder(
        len(tokenizer),
        encoder_dim,
        dim=64,
        layers=2,
        heads=4,
        dropout=0.0,
        pad_id=tokenizer.pad_token_id,
    )


def frames(b: int = 4, t: int = 9, d: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(3)
    return torch.randn(b, t, d), torch.tensor([t, t - 2, 5, 1][:b])


def test_mtc_equals_naive_bce() -> None:
    x, lengths = frames()
    objective = MTC(16, 6).eval()
    targets = (torch.rand(4, 6) > 0.5).float()
    loss, _ = objective.loss({"targets": targets}, objective(x, lengths, {}))
    logits = [objective.head.linear(x[i, : lengths[i]]).mean(0).detach() for i in range(4)]
    naive = 0.0
    for row, z in enumerate(logits):
        for k in range(6):
            p = 1 / (1 + math.exp(-float(z[k])))
            y = float(targets[row, k])
            naive -= y * math.log(p) + (1 - y) * math.log(1 - p)
    assert float(loss) == pytest.approx(naive / 24, rel=1e-5)


def test_ar_and_par_inputs(tokenizer: Any) -> None:
    special = SpecialTokens.from_tokenizer(tokenizer)
    ids = torch.tensor([[11, 12, 13], [21, 0, 0]])
    lengths = torch.tensor([3, 1])
    inputs, targets = ar_io(ids, lengths, special)
    assert inputs.tolist() == [
        [special.bos, 11, 12, 13],
        [special.bos, 21, special.pad, special.pad],
    ]
    assert targets.tolist() == [[11, 12, 13, special.eos], [21, special.eos, IGNORE, IGNORE]]
    inputs, targets = par_io(ids, lengths, special)
    assert inputs.tolist() == [[special.mask] * 3, [special.mask, special.pad, special.pad]]
    assert targets.tolist() == [[11, 12, 13], [21, IGNORE, IGNORE]]


@pytest.mark.parametrize("mode", ["ar", "par"])
def test_generative_loss_equals_naive_token_mean(tokenizer: Any, mode: str) -> None:
    x, lengths = frames()
    ids, id_lens = tag_batch(tokenizer, TAGS)
    objective = Generative(
        small_decoder(tokenizer, 16), SpecialTokens.from_tokenizer(tokenizer), mode
    ).eval()
    outputs = objective(x, lengths, {"tag_ids": ids, "tag_lens": id_lens})
    loss, _ = objective.loss({}, outputs)
    log_probs = outputs["logits"].log_softmax(-1)
    picked = [
        -float(log_probs[b, i, t])
        for b, row in enumerate(outputs["targets"].tolist())
        for i, t in enumerate(row)
        if t != IGNORE
    ]
    assert len(picked) == int(id_lens.sum()) + (4 if mode == "ar" else 0)  # AR adds an EOS per clip
    assert float(loss) == pytest.approx(sum(picked) / len(picked), rel=1e-5)


def test_par_has_no_language_prior_but_ar_does(tokenizer: Any) -> None:
    x, lengths = frames()
    special = SpecialTokens.from_tokenizer(tokenizer)
    decoder = small_decoder(tokenizer, 16).eval()
    ids, id_lens = tag_batch(tokenizer, TAGS)
    shuffled = ids.clone()
    for row, n in enumerate(id_lens.tolist()):  # other tokens, same counts
        shuffled[row, :n] = torch.randint(1000, 20000, (n,))
    for mode, should_change in (("par", False), ("ar", True)):
        objective = Generative(decoder, special, mode).eval()
        a = objective(x, lengths, {"tag_ids": ids, "tag_lens": id_lens})["logits"]
        b = objective(x, lengths, {"tag_ids": shuffled, "tag_lens": id_lens})["logits"]
        assert (not torch.allclose(a, b)) == should_change, mode


def test_contrastive_equals_naive_and_gathered_negatives(
    text_tower: TextTower, tokenizer: Any
) -> None:
    x, lengths = frames()
    text = text_tower.tokenize(TAGS)
    batch = {"text_ids": text["input_ids"], "text_mask": text["attention_mask"]}
    torch.manual_seed(0)
    single = Contrastive(16, text_tower, dim=8).eval()
    outputs = single(x, lengths, batch)
    loss, metrics = single.loss(batch, outputs)
    assert metrics["temperature"] == pytest.approx(0.07)
    a, t = outputs["audio"], outputs["text"]
    sims = (a @ t.T) / 0.07
    naive = 0.0
    for i in range(4):
        naive -= float(sims[i, i] - torch.logsumexp(sims[i], 0)) / 8
        naive -= float(sims[i, i] - torch.logsumexp(sims[:, i], 0)) / 8
    assert float(loss) == pytest.approx(naive, rel=1e-4)

    # Two ranks of 2 clips each, with a faked all-gather, see the same 4 x 4 problem.
    def fake_gather(rank: int, part: dict[str, torch.Tensor]) -> Any:
        other = slice(2 * (1 - rank), 2 * (1 - rank) + 2)

        def gather(local: torch.Tensor) -> torch.Tensor:
            name = "audio" if local is part["audio"] else "text"
            pieces = [local, outputs[name][other]]
            return torch.cat(
                pieces if rank == 0 else pieces[::-1]
            )  # rank order, live tensor in place

        return gather

    losses, local = [], []
    for rank in (0, 1):
        rows = slice(2 * rank, 2 * rank + 2)
        part = {"audio": outputs["audio"][rows], "text": outputs["text"][rows]}
        single.rank, single.world_size, single.gather = rank, 2, fake_gather(rank, part)
        losses.append(float(single.train().loss(batch, part)[0]))  # training: gathered negatives
        local.append(float(single.eval().loss(batch, part)[0]))  # eval: this rank's batch only
        own = sims[rows, rows]
        naive_local = -float((own.diag() - torch.logsumexp(own, 1)).mean() + (own.diag() - torch.logsumexp(own, 0)).mean()) / 2  # fmt: skip
        assert local[-1] == pytest.approx(naive_local, rel=1e-4)
    # Mean over ranks of per-rank means = the full-batch loss.
    assert sum(losses) / 2 == pytest.approx(float(loss), rel=1e-5)


def test_multitask_composes_mtc_and_pooled_generative(tokenizer: Any) -> None:
    x, lengths = frames()
    ids, id_lens = tag_batch(tokenizer, TAGS)
    special = SpecialTokens.from_tokenizer(tokenizer)
    batch = {"targets": (torch.rand(4, 5) > 0.5).float(), "tag_ids": ids, "tag_lens": id_lens}
    mtc, generative = (
        MTC(16, 5).eval(),
        Generative(small_decoder(tokenizer, 16), special, "par").eval(),
    )
    for p_ar, mode in ((0.0, "par"), (1.0, "ar")):
        multi = MultiTask(mtc, generative, lam=2.5, p_ar=p_ar).eval()
        loss, metrics = multi.loss(batch, multi(x, lengths, batch))
        generative.mode = mode
        expected = (
            mtc.loss(batch, mtc(x, lengths, batch))[0]
            + 2.5 * generative.loss(batch, generative(x, lengths, batch))[0]
        )
        assert float(loss) == pytest.approx(float(expected), rel=1e-5)
        assert metrics["ar_share"] == p_ar
    torch.manual_seed(0)
    shares = [
        MultiTask(mtc, generative, p_ar=0.25)(x, lengths, batch)["use_ar"].float().mean()
        for _ in range(200)
    ]
    assert float(torch.stack(shares).mean()) == pytest.approx(0.25, abs=0.04)


def memorise(
    objective: torch.nn.Module,
    batch: dict[str, Any],
    steps: int,
    optimizer: str = "adamw",
    lr: float | None = None,
) -> tuple[float, float]:
    torch.manual_seed(0)
    model = Pretrainer(Zipformer(preset("xs", dropout=0.0, layer_skip=0.0)), objective)
    model.specaug.time_masks = model.specaug.freq_masks = 0
    opt, schedule = build_optimizer(
        model, optimizer, lr=lr, lr_steps=1e9, lr_epochs=1e9, warmup_steps=1
    )
    first = last = 0.0
    for step in range(steps):
        metrics = train_step(model, batch, opt, scheduler=schedule)
        first = metrics["loss"] if step == 0 else first
        last = metrics["loss"]
    return first, last


@pytest.fixture(scope="module")
def audio_batch() -> dict[str, Any]:
    torch.manual_seed(7)
    # Like real sounds, each clip has its own spectral shape (i.i.d. noise clips would all look alike
    # after pooling over time).
    feats = 0.5 * torch.randn(4, 100, 80) + 2.0 * torch.randn(4, 1, 80)
    return {"feats": feats, "feat_lens": torch.tensor([100, 90, 80, 70])}


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["adamw", "scaled_adam"])
def test_mtc_memorises_a_tiny_batch(audio_batch: dict[str, Any], optimizer: str) -> None:
    batch = {
        **audio_batch,
        "targets": (torch.rand(4, 12, generator=torch.Generator().manual_seed(1)) > 0.6).float(),
    }
    first, last = memorise(MTC(128, 12, dropout=0.0), batch, 150, optimizer)
    assert last < 0.2 * first, (first, last)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ar", "par"])
def test_captioning_memorises_a_tiny_batch(
    audio_batch: dict[str, Any], tokenizer: Any, mode: str
) -> None:
    ids, id_lens = tag_batch(tokenizer, TAGS)
    batch = {**audio_batch, "tag_ids": ids, "tag_lens": id_lens}
    objective = Generative(
        small_decoder(tokenizer, 128), SpecialTokens.from_tokenizer(tokenizer), mode
    )
    first, last = memorise(objective, batch, 150)
    assert last < 0.2 * first, (first, last)


@pytest.mark.slow
def test_multitask_memorises_a_tiny_batch(audio_batch: dict[str, Any], tokenizer: Any) -> None:
    ids, id_lens = tag_batch(tokenizer, TAGS)
    batch = {**audio_batch, "tag_ids": ids, "tag_lens": id_lens, "targets": torch.eye(4)}
    special = SpecialTokens.from_tokenizer(tokenizer)
    objective = MultiTask(
        MTC(128, 4, dropout=0.0), Generative(small_decoder(tokenizer, 128), special, "par"), lam=1.0
    )
    first, last = memorise(objective, batch, 150)
    assert last < 0.2 * first, (first, last)


@pytest.mark.slow
def test_contrastive_memorises_a_tiny_batch(
    audio_batch: dict[str, Any], text_tower: TextTower
) -> None:
    text = text_tower.tokenize(TAGS)
    batch = {**audio_batch, "text_ids": text["input_ids"], "text_mask": text["attention_mask"]}
    # A pretrained text tower wants a smaller learning rate than 1e-3 (it diverges there).
    first, last = memorise(Contrastive(128, text_tower, dim=32), batch, 60, lr=3e-4)
    assert last < 0.2 * first, (first, last)


def test_eden_schedule_golden_values() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    eden = Eden(opt, lr_steps=100, lr_epochs=2, warmup_steps=10)
    assert eden.factor(0) == pytest.approx(0.5)
    assert eden.factor(100) == pytest.approx(2**-0.25)
    eden.set_epoch(2)
    assert eden.factor(100) == pytest.approx(2**-0.5)


def test_scaled_adam_minimises_a_quadratic_at_any_scale() -> None:
    for scale in (1e-2, 1.0):
        torch.manual_seed(0)
        target = torch.randn(20, 20) * scale
        weight = torch.nn.Parameter(torch.randn(20, 20) * scale)
        opt = ScaledAdam([weight], lr=0.05)
        start = float((weight - target).pow(2).mean())
        for _ in range(300):
            opt.zero_grad()
            loss = (weight - target).pow(2).mean()
            loss.backward()
            opt.step()
        assert float(loss) < 0.05 * start


@pytest.mark.parametrize("mode", ["ar", "par"])
def test_greedy_decoding_reads_back_what_was_learnt(tokenizer: Any, mode: str) -> None:
    """Overfit a tiny decoder on four clips' tag strings; greedy decoding returns them exactly."""
    x, lengths = frames()
    ids, id_lens = tag_batch(tokenizer, TAGS)
    objective = Generative(
        small_decoder(tokenizer, 16), SpecialTokens.from_tokenizer(tokenizer), mode
    )
    optimiser = torch.optim.Adam(objective.parameters(), lr=3e-3)
    batch = {"tag_ids": ids, "tag_lens": id_lens}
    for _ in range(150):
        optimiser.zero_grad()
        loss, _ = objective.loss(batch, objective(x, lengths, batch))
        loss.backward()
        optimiser.step()
    objective.eval()
    decoded = objective.greedy(
        x, lengths, mode=mode, target_lengths=id_lens if mode == "par" else None
    )
    expected = [row[:n].tolist() for row, n in zip(ids, id_lens, strict=True)]
    assert decoded == expected
    assert [tokenizer.decode(d) for d in decoded] == TAGS
    if mode == "par":
        with pytest.raises(ValueError, match="target_lengths"):
            objective.greedy(x, lengths, mode="par")


def test_ar_greedy_equals_step_by_step_argmax(tokenizer: Any) -> None:
    x, lengths = frames()
    special = SpecialTokens.from_tokenizer(tokenizer)
    objective = Generative(small_decoder(tokenizer, 16), special, "ar").eval()
    decoded = objective.greedy(x, lengths, max_tokens=5)
    frame_pad = torch.arange(x.shape[1])[None] >= lengths[:, None]
    for row in range(4):  # one clip at a time, no batching, the plain loop
        tokens = [special.bos]
        for _ in range(5):
            logits = objective.decoder(
                torch.tensor([tokens]), x[row : row + 1], frame_pad[row : row + 1], causal=True
            )
            tokens.append(int(logits[0, -1].argmax()))
            if tokens[-1] == special.eos:
                break
        expected = [t for t in tokens[1:] if t != special.eos]
        assert decoded[row] == expected[: len(decoded[row])] and len(decoded[row]) == len(expected)


def test_mtc_head_starts_at_the_tag_priors() -> None:
    """build_model(tag_prior=...) sets the MTC head's bias to the priors' log-odds (clamped to
    [1e-4, 0.5]); a prior of the wrong length is refused."""
    from uts.tags.vocab import Vocabulary
    from uts.train.config import preset as train_preset
    from uts.train.model import build_model

    vocab = Vocabulary(("a", "b", "c", "d"), (50, 10, 1, 0), (4.0, 3.0, 2.0, 1.0), n_clips=100)
    prior = vocab.prior()
    assert prior.tolist() == [0.5, 0.1, 0.01, 0.0]
    model = build_model(train_preset("smoke", k=4), tag_prior=prior.tolist())
    bias = model.objective.head.linear.bias
    expected = torch.tensor([0.5, 0.1, 0.01, 1e-4])
    torch.testing.assert_close(torch.sigmoid(bias), expected)
    with pytest.raises(ValueError, match="3 tag priors for a head of 4"):
        build_model(train_preset("smoke", k=4), tag_prior=[0.1, 0.1, 0.1])
    plain = build_model(train_preset("smoke", k=4))
    assert not torch.equal(plain.objective.head.linear.bias, bias)
