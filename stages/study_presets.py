"""The study's presets (demo, smoke, paper: the defaults of every study flag left out) and its
settings: a study spec with those defaults filled in, which is all the plan reads."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PRESETS", "Preset", "Settings"]


@dataclass(frozen=True)
class Preset:
    """A study's defaults; every field has a flag that overrides it."""

    corpus: str
    source: str | None  # ingest --source; None: the corpus must exist already
    captioner: str
    tagger: str
    train: str  # jobs/pretrain.py --preset
    k: int | None  # None: the training preset's K
    max_k: int
    protocol: str
    seeds: int | None
    local_text: bool  # tokenizer and text tower from the bundled MiniLM (offline)
    caption_args: tuple[str, ...] = ()  # before --caption-args (a flag given twice: the last wins)
    tag_args: tuple[str, ...] = ()
    pretrain_args: tuple[str, ...] = ()
    notes: str = ""


PRESETS = {
    "demo": Preset(corpus="demo", source="demo", captioner="acoustic", tagger="rules", train="demo", k=None,
                   max_k=3000, protocol="logistic", seeds=None, local_text=True,
                   notes="real recordings from Debian packages, acoustic captions with their text, rules tags"),
    "smoke": Preset(corpus="smoke", source="smoke", captioner="corpus", tagger="rules", train="smoke", k=8,
                    max_k=100, protocol="logistic", seeds=1, local_text=True,
                    notes="synthetic tones captioned with one of six sounds; checks the plumbing, not science"),
    "paper": Preset(corpus="corpus", source=None, captioner="vllm", tagger="vllm", train="m", k=1500,
                    max_k=3000, protocol="linear", seeds=None, local_text=False,
                    # vLLM needs compute capability >= 7.5: the captioner on A100s (30B, two per
                    # engine), the tagger on L4s; never the V100 training nodes.
                    caption_args=("--accelerator-type", "A100", "--tensor-parallel-size", "2"),
                    tag_args=("--accelerator-type", "L4"),
                    pretrain_args=("--num-workers", "8", "--use-gpu", "--accelerator-type", "V100"),
                    notes="the paper's models: Qwen3-Omni captioner, Qwen2.5-7B tagger, Zipformer-M on V100s"),
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Settings:
    """A study spec with its preset's defaults filled in and its strings split: all the plan reads."""

    preset_name: str  # a key of PRESETS
    preset: Preset  # PRESETS[preset_name]
    name: str  # <store>/studies/<name>
    corpus: str
    source: str | None  # None: the corpus must be in the store already
    path: str | None
    metadata: str | None
    cache: str
    captioner: str
    tagger: str
    caption_args: tuple[str, ...]  # the user's; the preset's are added by the plan
    tag_args: tuple[str, ...]
    pretrain_args: tuple[str, ...]
    max_k: int
    objectives: tuple[str, ...]
    k: int | None  # None: the training preset's K
    lam: float
    max_steps: int | None
    tokenizer: str | None
    text_model: str | None
    parallel: int | None  # None: auto
    protocol: str
    tasks: str
    seeds: int | None
    layers: str
    dry_run: bool
