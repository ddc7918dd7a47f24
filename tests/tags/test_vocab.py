"""The vectorised builder against the plain-Python reference, edge cases, and the vocabulary API."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from uts.tags import TagInputError, Vocabulary, resolve_sources
from uts.tags.build import build_vocabulary
from uts.tags.counting import hash_strings
from uts.tags.targets import multi_hot
from uts.testing import reference_vocabulary, sample_tag_rows, tag_table

TAG_POOL = [
    "drum",
    "Drums",
    "drums.",
    "bass",
    "8-bit",
    "8bit",
    "8_bit",
    "voice",
    "b",
    "a",
    "c",
    "hi hat",
    "Hi-Hats",
    "42",
    "",
    "glass",
    "glasses",
    "news",
    "zz",
    "aa",
]


def build(
    tmp_path: Path,
    rows: list[dict[str, Any]],
    *,
    max_k: int = 3000,
    normalize: bool = True,
    files: int = 1,
    batch_rows: int = 65536,
) -> Vocabulary:
    paths = []
    for i in range(files):
        part = rows[i::files]
        path = tmp_path / f"part-{i}.parquet"
        pq.write_table(tag_table(part), path, row_group_size=7)  # many row groups: streaming
        paths.append(str(path))
    result = build_vocabulary(
        resolve_sources(paths), name="t", max_k=max_k, normalize=normalize, batch_rows=batch_rows
    )
    return result.vocab


def as_entries(vocab: Vocabulary) -> list[tuple[str, int, float]]:
    return list(zip(vocab.tags, vocab.df, vocab.score, strict=True))


rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "tags": st.lists(st.one_of(st.sampled_from(TAG_POOL), st.text(max_size=6)), max_size=8),
            "status": st.sampled_from([None, "ok", "ok", "failed"]),
            "domain": st.sampled_from(["speech", "music", None]),
        }
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=rows_strategy,
    normalize=st.booleans(),
    max_k=st.integers(1, 30),
    files=st.integers(1, 3),
    batch_rows=st.sampled_from([1, 3, 1000]),
)
def test_matches_reference_on_random_input(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[dict[str, Any]],
    normalize: bool,
    max_k: int,
    files: int,
    batch_rows: int,
) -> None:
    tmp = tmp_path_factory.mktemp("h")
    for i, row in enumerate(rows):
        row["clip_id"] = f"c{i}"
    expected = reference_vocabulary(rows, normalize=normalize, max_k=max_k)
    usable = [r for r in rows if r["status"] in (None, "ok")]
    files = min(files, len(rows))
    if not usable or not expected:
        with pytest.raises(
            TagInputError, match="no usable clips" if not usable else "not one usable tag"
        ):
            build(tmp, rows, normalize=normalize, files=files)
        return
    got = build(tmp, rows, max_k=max_k, normalize=normalize, files=files, batch_rows=batch_rows)
    assert as_entries(got) == expected
    assert got.n_clips == len(usable)


def test_matches_reference_on_bundled_sample(tmp_path: Path) -> None:
    rows = sample_tag_rows()
    assert as_entries(build(tmp_path, rows)) == reference_vocabulary(rows)


def rows_of(*clips: list[str]) -> list[dict[str, Any]]:
    return [{"clip_id": f"c{i}", "tags": tags} for i, tags in enumerate(clips)]


def test_ties_break_by_df_then_alphabetically(tmp_path: Path) -> None:
    # N=4. 'b','a' df 2: score 2 ln(5/3); 'c' df 1: ln(5/2) < 2 ln(5/3). 'z','y' df 1 tie -> y first.
    vocab = build(tmp_path, rows_of(["b", "a", "z"], ["a", "b", "y"], ["c"], []))
    assert vocab.tags == ("a", "b", "c", "y", "z")
    assert vocab.df == (2, 2, 1, 1, 1)
    assert vocab.score[0] == 2 * math.log(5 / 3)


def test_tag_on_every_clip_ranks_last_with_score_zero(tmp_path: Path) -> None:
    # df = N makes the log term ln((N+1)/(N+1)) = 0. (Exact float ties between different df do not
    # occur for N < 3000, checked by brute force, so the df tie-break is a guard, not a common path.)
    vocab = build(tmp_path, rows_of(["all", "half"], ["all", "half"], ["all"], ["all", "x"]))
    assert vocab.tags == ("half", "x", "all")
    assert vocab.score[-1] == 0.0


def test_one_clip(tmp_path: Path) -> None:
    vocab = build(tmp_path, rows_of(["Drums", "bass", "drum"]))
    assert vocab.tags == ("bass", "drum")
    assert vocab.df == (1, 1)
    assert vocab.score == (math.log(2 / 2),) * 2  # N=1, df=1: ln(2/2) = 0
    assert vocab.n_clips == 1


def test_all_clips_share_a_tag_scores_zero(tmp_path: Path) -> None:
    vocab = build(tmp_path, rows_of(["common", "rare"], ["common"], ["common", "other"]))
    assert dict(zip(vocab.tags, vocab.score, strict=True))["common"] == 0.0
    assert vocab.tags[-1] == "common"


def test_status_not_ok_rows_are_left_out_of_n_and_df(tmp_path: Path) -> None:
    rows = rows_of(["a"], ["a", "b"], ["b"])
    rows[2]["status"] = "failed"
    rows[1]["status"] = "ok"
    vocab = build(tmp_path, rows)
    assert vocab.n_clips == 2
    assert dict(zip(vocab.tags, vocab.df, strict=True)) == {"a": 2, "b": 1}


def test_variants_merge_and_show_most_frequent_spelling(tmp_path: Path) -> None:
    vocab = build(tmp_path, rows_of(["8bit"], ["8-bit"], ["8_bit"], ["8bit", "8-bit"]))
    assert vocab.tags == ("8-bit",)  # 8-bit: 2 clips (8_bit normalises to it: 3), 8bit: 2
    assert vocab.df == (4,)


def test_no_normalize_keeps_tags_exactly(tmp_path: Path) -> None:
    vocab = build(tmp_path, rows_of(["Drums", "drum"], ["drum"]), normalize=False)
    assert set(vocab.tags) == {"Drums", "drum"}


def test_any_k_is_a_prefix_of_max_k(tmp_path: Path) -> None:
    rows = sample_tag_rows()
    full = build(tmp_path, rows, max_k=100)
    for k in (1, 10, 40):
        assert build(tmp_path, rows, max_k=k).tags == full.tags[:k] == full.at(k).tags


def test_duplicate_clip_ids_are_refused_with_names(tmp_path: Path) -> None:
    rows = rows_of(["a"], ["b"], ["c"])
    rows[2]["clip_id"] = "c0"
    with pytest.raises(TagInputError, match=r"'c0' in .*part-0\.parquet"):
        build(tmp_path, rows)


def test_hash_distinguishes_near_identical_strings() -> None:
    values = pa.array(["", "a", "b", "ab", "ba", "aa", "a" * 300, "a" * 299 + "b", "é"]).slice(0)
    hashes = hash_strings(values)
    assert len(set(hashes.tolist())) == len(values)
    assert (hash_strings(values.slice(3, 3)) == hashes[3:6]).all()  # offsets honoured


# The vocabulary API used by training and serving.


@pytest.fixture
def small_vocab() -> Vocabulary:
    return Vocabulary(
        tags=("speech", "drum", "8-bit", "bass"),
        df=(9, 7, 5, 3),
        score=(4.0, 3.0, 2.0, 1.0),
        n_clips=10,
    )


def test_lookup_uses_normalisation(small_vocab: Vocabulary) -> None:
    assert small_vocab.index("Drums") == 1
    assert small_vocab.index("8bit") == 2
    assert small_vocab.index("violin") is None


def test_canonical_string_in_rank_order(small_vocab: Vocabulary) -> None:
    assert (
        small_vocab.canonical_string(["bass", "violin", "Speech", "drums", "drum"])
        == "speech, drum, bass"
    )
    assert small_vocab.at(2).canonical_string(["bass", "drum"]) == "drum"
    assert small_vocab.canonical_string([]) == ""


def test_multi_hot(small_vocab: Vocabulary) -> None:
    target = multi_hot(small_vocab.at(3), [["drums", "bass"], [], ["8_bit", "speech"]])
    expected = torch.tensor([[0, 1, 0, 0], [0, 0, 0, 0], [1, 0, 1, 0]], dtype=torch.float32)[:, :3]
    assert torch.equal(target, expected)


def test_at_refuses_k_beyond_size(small_vocab: Vocabulary) -> None:
    with pytest.raises(ValueError, match=r"K=5 is not in 1\.\.4"):
        small_vocab.at(5)
