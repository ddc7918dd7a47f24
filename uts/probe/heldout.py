"""Retrieval and captioning on a run's held-out clips: the validation share of its pretraining
clips (uts.train.batching.is_validation), which training never stepped on.

- Retrieval (contrastive runs): every held-out clip's audio against texts of two kinds, its canonical
  tag string (what the text tower was trained on) and its description; R@1/5/10 and ranks in both
  directions (uts.probe.retrieval), per text kind.
- Captioning (ar, par, multitask runs): greedy decoding of the tag string; tag-set precision,
  recall and F1 against the clip's tags at K; BLEU/METEOR/ROUGE-L/CIDEr of the decoded string
  against the clip's description (uts.probe.captioning; skipped with the reason without Java).
  PAR has no length model, so PAR decoding is given the reference's token count (an oracle, stated
  in the result).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from uts.audio import Wave
from uts.store import Store

if TYPE_CHECKING:
    from uts.probe.embeddings import EncoderSource

__all__ = ["HeldOut", "captioning", "heldout_clips", "heldout_metrics", "retrieval"]


@dataclass(frozen=True)
class HeldOut:
    clip_ids: list[str]
    waves: list[Wave]
    tags: list[list[str]]  # in the vocabulary at K, in rank order
    tag_strings: list[str]  # canonical: "tag_a, tag_d, tag_k"
    descriptions: list[str]  # "" where the clip has none


def heldout_clips(store: Store, lineage: dict[str, Any], *, limit: int = 500) -> HeldOut:
    """Up to `limit` held-out clips of the run's corpus with tags at the run's K (sorted by id).

    Raises:
        FileNotFoundError: the run's corpus, tags or vocabulary is not in this store.
    """
    from uts.data import iter_clip_batches, load_waves
    from uts.llm.stage import read_parts
    from uts.tags import load_vocab
    from uts.train.batching import is_validation

    config, corpus = lineage["config"], lineage["corpus"]["name"]
    tags_fp, vocab = lineage["tags"]["fingerprint"], lineage["vocab"]
    for parts in (("corpora", corpus), ("tags", corpus, tags_fp), ("vocab", vocab["name"])):
        if not store.is_complete(*parts):
            raise FileNotFoundError(f"the run's input {store.uri(*parts)} is not in this store")
    at_k = load_vocab(store.uri("vocab", vocab["name"]), k=int(config["k"]))
    held = set()
    for batch in iter_clip_batches(store.uri("corpora", corpus), columns=["clip_id", "partition"]):
        for clip, partition in zip(
            batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True
        ):
            if partition == "pretrain" and is_validation(clip, float(config["val_fraction"])):
                held.add(clip)

    def table(kind: str, fingerprint: str, columns: list[str]) -> list[dict[str, Any]]:
        return read_parts(store.uri(kind, corpus, fingerprint), columns)

    tags = {r["clip_id"]: r["tags"] for r in table("tags", tags_fp, ["clip_id", "tags", "status"])
            if r["status"] == "ok" and r["clip_id"] in held}  # fmt: skip
    kept = sorted(c for c, t in tags.items() if at_k.indices(t))[:limit]
    captions_fp = captions_fingerprint(store.read_json("tags", corpus, tags_fp, "stage.json"))
    descriptions: dict[str, str] = {}
    if captions_fp and store.is_complete("captions", corpus, captions_fp):
        descriptions = {
            r["clip_id"]: r["description"] or ""
            for r in table("captions", captions_fp, ["clip_id", "description"])
        }
    ids, waves = load_waves(store.uri("corpora", corpus), set(kept))
    order = {c: i for i, c in enumerate(ids)}
    waves = [waves[order[c]] for c in kept]
    ranked = [[at_k.tags[i] for i in at_k.indices(tags[c])] for c in kept]
    return HeldOut(kept, waves, ranked, [at_k.canonical_string(tags[c]) for c in kept],
                   [descriptions.get(c, "") for c in kept])  # fmt: skip


def captions_fingerprint(stage: dict[str, Any]) -> str | None:
    """The captions fingerprint a tags stage was made from (stage.json's fingerprint_inputs)."""
    inputs = stage.get("fingerprint_inputs") or {}
    value = inputs.get("captions_fingerprint") if isinstance(inputs, dict) else None
    return str(value) if value else None


@torch.no_grad()
def _frames(
    model: Any, waves: Sequence[Wave], batch: int = 16
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Encoder frames per batch of clips, in the given order: [(frames, lengths)]."""
    from uts.audio.fbank import Fbank

    fbank = Fbank()
    model.eval()
    out = []
    for start in range(0, len(waves), batch):
        feats, lengths = fbank(list(waves[start : start + batch]))
        out.append(model.encoder(feats, lengths))
    return out


@torch.no_grad()
def retrieval(model: Any, held: HeldOut, tokenizer: Any) -> dict[str, Any]:
    """Text-to-audio and audio-to-text retrieval of a contrastive model, per text kind."""
    from uts.models.zipformer import masked_mean
    from uts.probe.retrieval import retrieval_metrics

    head = model.objective
    audio = torch.cat([head.audio_proj(masked_mean(f, n)) for f, n in _frames(model, held.waves)])
    out: dict[str, Any] = {"n_clips": len(held.clip_ids)}
    for kind, texts in (("tag_string", held.tag_strings), ("description", held.descriptions)):
        owners = [i for i, t in enumerate(texts) if t.strip()]
        if not owners:
            out[kind] = {"skipped": f"no held-out clip has a {kind.replace('_', ' ')}"}
            continue
        encoded = []
        for start in range(0, len(owners), 64):
            chunk = [texts[i] for i in owners[start : start + 64]]
            tokens = tokenizer(
                chunk, padding=True, truncation=True, max_length=128, return_tensors="pt"
            )
            encoded.append(head.text_proj(head.text(tokens["input_ids"], tokens["attention_mask"])))
        out[kind] = retrieval_metrics(audio.numpy(), torch.cat(encoded).numpy(), owners)
    return out


@torch.no_grad()
def captioning(model: Any, held: HeldOut, tokenizer: Any, *, mode: str) -> dict[str, Any]:
    """Greedy tag strings of a generative model (mode ar or par) scored against the clips' tags and
    descriptions."""
    from uts.probe.captioning import caption_metrics, parse_tag_string, tag_set_scores

    head = model.objective
    generative = getattr(head, "generative", head)
    decoded: list[str] = []
    start = 0
    for frames, lengths in _frames(model, held.waves):
        chunk = held.tag_strings[start : start + len(lengths)]
        start += len(lengths)
        target = None
        if mode == "par":
            target = torch.tensor(
                [max(len(tokenizer(s, add_special_tokens=False)["input_ids"]), 1) for s in chunk]
            )
        ids = generative.greedy(frames, lengths, mode=mode, target_lengths=target)
        decoded += [tokenizer.decode(i, skip_special_tokens=True) for i in ids]
    predicted = [parse_tag_string(d) for d in decoded]
    result: dict[str, Any] = {
        "mode": mode, "n_clips": len(decoded),
        "length": "reference token count (PAR has no length model)" if mode == "par" else "greedy until EOS",
        "tags": tag_set_scores(predicted, held.tags),
        "examples": [{"clip_id": c, "decoded": d, "reference": r}
                     for c, d, r in list(zip(held.clip_ids, decoded, held.tag_strings, strict=True))[:10]],
    }  # fmt: skip
    described = {c: d for c, d in zip(held.clip_ids, held.descriptions, strict=True) if d.strip()}
    if described:
        candidates = {c: d for c, d in zip(held.clip_ids, decoded, strict=True) if c in described}
        result["descriptions"] = caption_metrics(candidates, {c: [d] for c, d in described.items()})
        result["descriptions"].pop("per_clip", None)
    else:
        result["descriptions"] = {"skipped": "no held-out clip has a description"}
    return result


def heldout_metrics(store: Store, source: EncoderSource, limit: int) -> dict[str, Any]:
    """Retrieval (contrastive) or captioning (ar, par, multitask) of a checkpoint on up to `limit`
    of its run's held-out clips: {"retrieval": ...} or {"captioning": {mode: ...}}; {} for an MTC
    run, a baseline or `limit` 0; {"heldout": {"skipped": reason}} when no held-out clip has tags
    at the run's K.

    Raises:
        FileNotFoundError: the run's corpus, tags or vocabulary is not in this store.
    """
    from uts.models.text import load_tokenizer
    from uts.train.model import load_checkpoint

    if source.checkpoint is None or limit <= 0 or source.config.objective == "mtc":
        return {}
    objective = str(source.config.objective)
    held = heldout_clips(store, source.lineage, limit=limit)
    if not held.clip_ids:
        return {"heldout": {"skipped": "the run has no held-out clips with tags at its K"}}
    model = load_checkpoint(source.checkpoint)[0]
    print(
        f"  {source.label}: {objective} on {len(held.clip_ids)} held-out clip(s)", file=sys.stderr
    )
    if objective == "contrastive":
        return {"retrieval": retrieval(model, held, load_tokenizer(source.config.text_model))}
    tokenizer = load_tokenizer(source.config.tokenizer)
    modes = ("ar", "par") if objective == "multitask" else (objective,)
    return {"captioning": {mode: captioning(model, held, tokenizer, mode=mode) for mode in modes}}
