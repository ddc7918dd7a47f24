"""The evaluation job on task folders of every shape the README documents: results, cache hits,
determinism, baselines beside a checkpoint, the leak refusal, and the comparison table."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from jobs import evaluate
from uts.probe.evaluate import domain_means, evaluate_task, load_task
from uts.probe.tasks import Task, write_task
from uts.testing.corpus import make_task_folder
from uts.train.config import preset
from uts.train.model import build_model

# (task name, prediction type, metric, domain, labels per class): the public datasets' shapes.
SHAPES = [
    ("fsd50k", "multilabel", "mAP", "environment", ["dog", "rain", "engine", "bell"]),
    ("vggsound", "multiclass", "accuracy", "environment", ["dog", "rain", "engine"]),
    ("voxceleb2", "multiclass", "accuracy", "speech", ["id001", "id002", "id003"]),
    ("crema_d", "multiclass", "accuracy", "speech", ["ANG", "HAP", "SAD"]),
    ("mtat", "multilabel", "mAP", "music", ["guitar", "piano", "vocal", "drum"]),
    ("nsynth_pitch", "multiclass", "accuracy", "music", ["48", "55", "60", "67"]),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("evalstore")
    for shape in SHAPES:
        make_task_folder(root / "tasks", *shape)
    return root


def test_every_shape_is_read_and_scored_then_cached(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--store", str(store), "--baseline", "logmel", "--protocol", "knn"]
    assert evaluate.main(argv) == 0
    out = store / "evals" / "logmel" / "knn"
    first = {name: json.loads((out / f"{name}.json").read_text()) for name, *_ in SHAPES}
    for name, _, metric, domain, _ in SHAPES:
        result = first[name]
        assert (
            result["metric"] == metric
            and result["domain"] == domain
            and result["seeds"] == [0, 1, 2]
        )
        assert 0.0 <= result["score"]["mean"] <= 1.0 and not result["embeddings_cached"]
        assert result["n_clips"] == 36
    # pure tones per class: log-mel statistics separate the multiclass tasks
    assert first["vggsound"]["score"]["mean"] > 0.9
    assert "score_chroma_accuracy" in first["nsynth_pitch"]
    assert (
        (out / "report.md").exists() and (out / "bars.png").exists() and (out / "pca.png").exists()
    )
    assert evaluate.main(argv) == 0  # second run: every embedding from the cache, same numbers
    for name, *_ in SHAPES:
        again = json.loads((out / f"{name}.json").read_text())
        assert again["embeddings_cached"] and again["score"] == first[name]["score"]
    capsys.readouterr()
    assert evaluate.main(["--store", str(store), "--compare", "logmel", "--protocol", "knn"]) == 0
    table = capsys.readouterr().out
    assert "| log-mel |" in table and "fsd50k" in table and "majority class" in table


def test_encoder_embeddings_are_deterministic_in_eval_mode() -> None:
    from uts.probe.encoder import embed

    encoder = build_model(preset("smoke")).encoder
    encoder.train()  # embed must switch to eval mode itself (dropout, layer skipping off)
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (16000, 24000, 40000)]
    first, second = embed(encoder, waves), embed(encoder, waves)
    assert np.array_equal(first, second) and np.isfinite(first).all()


def fake_checkpoint(folder: Path, corpus: str) -> Path:
    config = preset("smoke")
    folder.mkdir(parents=True)
    torch.save(build_model(config).state_dict(), folder / "model.pt")
    lineage = {"config": config.to_dict(), "corpus": {"name": corpus, "fingerprint": "f"},
               "tags": {"fingerprint": "t"}, "vocab": {"name": "v", "fingerprint": "x", "k": config.k}}  # fmt: skip
    (folder / "lineage.json").write_text(json.dumps(lineage))
    return folder


def test_checkpoint_beside_both_baselines_and_leak_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from stages.fixtures import make_tagged_store

    store = make_tagged_store(tmp_path / "tagged", clips=12)
    make_task_folder(store / "tasks", *SHAPES[1])
    checkpoint = fake_checkpoint(tmp_path / "ckpt", "c")
    argv = [
        "--store",
        str(store),
        "--checkpoint",
        str(checkpoint),
        "--protocol",
        "knn",
        "--seeds",
        "1",
    ]
    assert evaluate.main([*argv, "--name", "fake"]) == 0
    summary = json.loads((store / "evals" / "fake" / "knn" / "summary.json").read_text())
    assert set(summary["baselines"]) == {"log-mel", "random-init"}
    assert summary["results"]["vggsound"]["seeds"] == [0]
    # The fake checkpoint holds the random-init weights: the same embedding space in all but name.
    ours, random_init = (
        summary["results"]["vggsound"],
        summary["baselines"]["random-init"]["vggsound"],
    )
    assert ours["score"] == random_init["score"]
    # A second run's evaluation (another results name) reads the baselines' results back instead of
    # fitting again: the same numbers; another protocol fits anew.
    capsys.readouterr()
    assert evaluate.main([*argv, "--name", "fake2"]) == 0
    err = capsys.readouterr().err
    assert err.count("result reused") == 2, err  # log-mel and random-init on the one task
    again = json.loads((store / "evals" / "fake2" / "knn" / "summary.json").read_text())
    assert again["baselines"] == summary["baselines"]
    assert evaluate.main([*argv[:-4], "--protocol", "logistic", "--name", "fake3"]) == 0
    assert "result reused" not in capsys.readouterr().err
    # A task over clips the run trained on (corpus c's pretrain partition) is refused.
    clips = sorted(p.name for p in (store / "corpora").iterdir())
    assert clips == ["c"]
    from uts.data import iter_clip_batches

    ids = [
        i
        for b in iter_clip_batches(str(store / "corpora" / "c"), columns=["clip_id"])
        for i in b.column(0).to_pylist()
    ]
    leak = Task(name="leaky", prediction_type="multiclass", metric="accuracy",
                labels={c: (str(i % 2),) for i, c in enumerate(ids)}, groups={c: c for c in ids},
                audio={"corpus": "c"})  # fmt: skip
    write_task(leak, store / "tasks" / "leaky", seeds=(0,))
    capsys.readouterr()
    assert evaluate.main([*argv, "--tasks", "leaky"]) == 2
    assert "pretraining partition" in capsys.readouterr().err


def test_all_layers_is_its_own_space_and_results_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from uts.probe.embeddings import checkpoint_source, logmel_source

    store = tmp_path / "store"
    make_task_folder(store / "tasks", *SHAPES[1])
    checkpoint = fake_checkpoint(tmp_path / "ckpt", "c")
    argv = ["--store", str(store), "--checkpoint", str(checkpoint), "--name", "fake",
            "--protocol", "knn", "--seeds", "1"]  # fmt: skip
    assert evaluate.main(argv) == 0
    assert evaluate.main([*argv, "--layers", "all"]) == 0
    final = json.loads((store / "evals" / "fake" / "knn" / "summary.json").read_text())
    every = json.loads((store / "evals" / "fake" / "knn-all-layers" / "summary.json").read_text())
    source = checkpoint_source(str(checkpoint))
    assert final["space"] == source.space and final["layers"] == "final"
    assert every["space"] == source.space + "-all-layers" and every["layers"] == "all"
    assert source.with_layers("all").with_layers("final") == source
    assert logmel_source().with_layers("all") == logmel_source()  # log-mel has no layers
    # every depth of the encoder: the stem, each stack and the output, cached apart from the output
    widths = {
        p.parent.parent.name: np.load(p).shape[1]
        for p in (store / "embeddings").glob("*/*/embeddings.npy")
    }
    encoder = build_model(preset("smoke")).encoder
    assert widths[source.space] == encoder.output_dim
    assert widths[source.space + "-all-layers"] == encoder.layers_dim
    # the random-init baseline beside it is read at the same layers
    assert any(name.startswith("random-init") and name.endswith("-all-layers") for name in widths)
    # one depth is its slice of "all": the third stack, here at the smoke encoder's width
    assert evaluate.main([*argv, "--layers", "stack3", "--no-baselines"]) == 0
    third = json.loads((store / "evals" / "fake" / "knn-stack3" / "summary.json").read_text())
    assert third["space"] == source.space + "-stack3"
    [every_dir] = (store / "embeddings" / (source.space + "-all-layers")).iterdir()
    [third_dir] = (store / "embeddings" / (source.space + "-stack3")).iterdir()
    start = sum(list(encoder.layer_widths.values())[:3])  # stem, stack1, stack2 come first
    width = encoder.layer_widths["stack3"]
    assert np.allclose(np.load(third_dir / "embeddings.npy"),
                       np.load(every_dir / "embeddings.npy")[:, start : start + width], atol=1e-6)  # fmt: skip
    with pytest.raises(ValueError, match="stack9"):
        source.with_layers("stack9")
    capsys.readouterr()
    compare = ["--store", str(store), "--compare", "fake", "--protocol", "knn", "--layers", "all"]
    assert evaluate.main(compare) == 0
    assert "| fake |" in capsys.readouterr().out


def test_bad_arguments_exit_2(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert evaluate.main(["--store", str(store), "--baseline", "logmel", "--tasks", "nope"]) == 2
    assert "unknown task" in capsys.readouterr().err
    assert evaluate.main(["--store", str(store), "--run", "missing"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert evaluate.main(["--store", str(store), "--compare", "never-evaluated"]) == 2


def test_evaluate_task_majority_and_domain_means(store: Path) -> None:
    task = load_task(store / "tasks" / "vggsound")
    index = {c: i for i, c in enumerate(task.clips())}
    # one-hot features of the true class: every protocol is perfect; majority is the most common class
    labels = {
        c: part[c][0] for parts in task.splits.values() for part in parts.values() for c in part
    }
    features = {
        c: np.eye(3, dtype=np.float32)[task.vocabulary.index(labels[c])] * 5 + 0.01 * index[c]
        for c in labels
    }
    result = evaluate_task(task, features, protocol="logistic")
    assert result["score"]["mean"] == 1.0
    assert 0.2 < result["majority"]["mean"] < 0.6
    means = domain_means({"a": {"domain": "speech", "score": {"mean": 0.5}},
                          "b": {"domain": "speech", "score": {"mean": 0.7}},
                          "c": {"domain": "music", "score": {"mean": 0.1}}})  # fmt: skip
    assert means == pytest.approx({"speech": 0.6, "music": 0.1, "all": 1.3 / 3})


def test_results_of_another_encoder_are_not_merged(store: Path) -> None:
    """evals/<name>/<protocol>/ keeps earlier tasks of the same encoder only."""
    base = ["--store", str(store), "--protocol", "knn", "--name", "shared"]
    assert evaluate.main([*base, "--baseline", "logmel", "--tasks", "vggsound,mtat"]) == 0
    assert evaluate.main([*base, "--baseline", "logmel", "--tasks", "crema_d"]) == 0
    summary = json.loads((store / "evals" / "shared" / "knn" / "summary.json").read_text())
    assert set(summary["results"]) == {"vggsound", "mtat", "crema_d"}
    assert (
        evaluate.main(
            [*base, "--baseline", "random-init", "--preset", "smoke", "--tasks", "crema_d"]
        )
        == 0
    )
    summary = json.loads((store / "evals" / "shared" / "knn" / "summary.json").read_text())
    assert set(summary["results"]) == {"crema_d"} and summary["kind"] == "random-init"


def test_a_clip_shared_by_tasks_is_embedded_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tasks on one corpus share clips (the demo's sound_attributes holds every clip of the
    others): one evaluation embeds each clip once per encoder, and the vectors are those a task
    extracted alone would get."""
    from stages.evaluate import evaluate_source
    from stages.fixtures import make_tagged_store
    from uts.data import iter_clip_batches
    from uts.probe.embeddings import EncoderSource, WaveBank, random_init_source, task_embeddings
    from uts.store import Store

    root = make_tagged_store(tmp_path, clips=12)
    ids = sorted(i for b in iter_clip_batches(str(root / "corpora" / "c"), columns=["clip_id"])
                 for i in b.column(0).to_pylist())  # fmt: skip
    for name, clips in (("all", ids), ("half", ids[::2]), ("third", ids[1::3])):
        task = Task(name=name, prediction_type="multiclass", metric="accuracy",
                    labels={c: (str(n % 2),) for n, c in enumerate(clips)},
                    groups={c: c for c in clips}, audio={"corpus": "c"}, domain="environment")  # fmt: skip
        write_task(task, root / "tasks" / name, seeds=(0,))
    tasks = [load_task(root / "tasks" / n) for n in ("half", "third", "all")]
    source = random_init_source(preset("smoke"))
    embedded: list[int] = []
    plain = EncoderSource.embedder

    def counting(self: EncoderSource) -> Any:
        inner = plain(self)
        return lambda waves: embedded.append(len(waves)) or inner(waves)

    monkeypatch.setattr(EncoderSource, "embedder", counting)
    store = Store(str(root))
    results, used = evaluate_source(store, source, tasks, protocol="knn", seeds=1,
                                    bank=WaveBank(store), cache=False)  # fmt: skip
    assert sum(embedded) == len(ids) == 12 and sorted(results) == ["all", "half", "third"]
    for task in tasks:  # each task alone, without the shared clips
        alone, hit = task_embeddings(store, task, source, cache=False)
        assert not hit
        for clip, vector in alone.items():
            np.testing.assert_allclose(used[clip], vector, rtol=1e-5, atol=1e-5)
