"""Captioning and tagging metrics: tag-set precision/recall/F1, and the COCO caption metrics.

`caption_metrics` uses the `pycocoevalcap` package (the COCO caption evaluation code): its Python
scorers for BLEU-1..4, ROUGE-L and CIDEr, and its bundled Java jars for the PTB tokenizer and
METEOR. The jars are driven from here rather than through the package's wrappers, which run Java
with no timeout and write temporary files into the installed package folder. SPICE is left out
(it downloads parser models on first use).
"""

from __future__ import annotations

import contextlib
import math
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from uts.tags import normalize_tags, tag_key

__all__ = ["caption_metrics", "parse_tag_string", "tag_set_scores"]

JAVA_MISSING = (
    "java not found on PATH: METEOR and the PTB tokenizer need a Java runtime "
    "(apt-get install default-jre-headless)"
)
PYCOCOEVALCAP_MISSING = (
    "pycocoevalcap is not importable ({error}): install it with `pip install pycocoevalcap==1.2` "
    "(in the dev extra)"
)
# Characters Java's line readers or the PTB lexer treat as line breaks: inside a caption they
# would shift every later line of the tokenizer's one-sentence-per-line output.
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
_METEOR_HEAP = "-Xmx2G"  # what pycocoevalcap gives METEOR


def parse_tag_string(text: str) -> list[str]:
    """Split a comma-separated tag string: `"tag_a, tag_d, , tag_k"` -> `["tag_a", "tag_d", "tag_k"]`.

    Tags are stripped and empty pieces dropped; no normalisation (that happens when scoring).
    """
    return [piece.strip() for piece in text.split(",") if piece.strip()]


def _tag_identities(tags: Sequence[str], side: str, clip: int) -> set[str]:
    """The set of tag identities of one clip: `normalize_tag`, drop unusable, dedupe by `tag_key`."""
    if isinstance(tags, str):
        raise ValueError(
            f"{side}[{clip}] is a string ({tags[:40]!r}), expected a list of tags: "
            "split it with parse_tag_string first"
        )
    return {tag_key(form) for form in normalize_tags(tags)}


def _ratio(numerator: int, denominator: int, *, empty: float) -> float:
    return numerator / denominator if denominator else empty


def _f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def tag_set_scores(
    predicted: Sequence[Sequence[str]], reference: Sequence[Sequence[str]]
) -> dict[str, float]:
    """Precision, recall and F1 of predicted tag sets against reference tag sets.

    Tags are compared after `uts.tags.normalize_tag` (so "Dogs" matches "dog"), deduplicated by
    their identity (`tag_key`: "8-bit" is "8bit"); tags that normalise to nothing ("", "1990") are
    dropped. Conventions for empty sets: an empty prediction scores precision 0 and an empty
    reference recall 0, except that an empty prediction for an empty reference is right and scores
    1 for precision, recall and F1. The same holds for the micro scores' summed counts.

    Returns:
        "precision", "recall", "f1": per clip, averaged over clips (macro over clips; "f1" is the
        mean of per-clip F1, not the F1 of the means). "micro_precision", "micro_recall",
        "micro_f1": from true positives, predicted and reference counts summed over clips.

    Raises:
        ValueError: different numbers of clips, no clips, or a clip given as one string.
    """
    if len(predicted) != len(reference):
        raise ValueError(f"predicted has {len(predicted)} clips but reference has {len(reference)}")
    if not predicted:
        raise ValueError("no clips to score: predicted and reference are empty")
    precisions, recalls, f1s = [], [], []
    hits_total = predicted_total = reference_total = 0
    for clip, (pred_tags, ref_tags) in enumerate(zip(predicted, reference, strict=True)):
        pred = _tag_identities(pred_tags, "predicted", clip)
        ref = _tag_identities(ref_tags, "reference", clip)
        hits = len(pred & ref)
        both_empty = 1.0 if not pred and not ref else 0.0
        precision = _ratio(hits, len(pred), empty=both_empty)
        recall = _ratio(hits, len(ref), empty=both_empty)
        precisions.append(precision)
        recalls.append(recall)
        f1s.append(1.0 if both_empty else _f1(precision, recall))
        hits_total += hits
        predicted_total += len(pred)
        reference_total += len(ref)
    nothing_at_all = 1.0 if predicted_total == reference_total == 0 else 0.0
    micro_precision = _ratio(hits_total, predicted_total, empty=nothing_at_all)
    micro_recall = _ratio(hits_total, reference_total, empty=nothing_at_all)
    return {
        "precision": math.fsum(precisions) / len(precisions),
        "recall": math.fsum(recalls) / len(recalls),
        "f1": math.fsum(f1s) / len(f1s),
        "micro_precision": micro_precision,
        "micro_recall": micro_recall,
        "micro_f1": nothing_at_all or _f1(micro_precision, micro_recall),
    }


def _check_caption_inputs(
    candidates: Mapping[str, str], references: Mapping[str, Sequence[str]]
) -> list[str]:
    """The clip ids to score, in candidate order; raises ValueError naming what is wrong."""
    if not candidates:
        raise ValueError("no candidates to score")
    missing = [clip for clip in candidates if clip not in references]
    extra = [clip for clip in references if clip not in candidates]
    if missing or extra:
        raise ValueError(
            "candidates and references must cover the same clips: "
            f"{len(missing)} candidates have no references (first: {missing[:5]}), "
            f"{len(extra)} references have no candidate (first: {extra[:5]})"
        )
    for clip, caption in candidates.items():
        if not isinstance(caption, str):
            raise ValueError(f"candidate for clip {clip!r} must be one string, got {caption!r}")
    for clip, refs in references.items():
        if isinstance(refs, str) or not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(
                f"references for clip {clip!r} must be a non-empty list of strings, got {refs!r}"
            )
    return list(candidates)


def caption_metrics(
    candidates: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    *,
    timeout_s: float = 600.0,
) -> dict[str, Any]:
    """BLEU-1..4, METEOR, ROUGE-L and CIDEr of one candidate caption per clip (COCO protocol).

    Captions are PTB-tokenised and lower-cased, punctuation tokens dropped, as pycocoevalcap does.
    BLEU is corpus-level (closest reference length); CIDEr(-D) takes its document frequencies
    from the references given, so it means little on a handful of clips.

    Args:
        candidates: clip id -> the generated caption.
        references: clip id -> its reference captions (at least one); same clips as candidates.
        timeout_s: budget for the Java work (tokenizer and METEOR together).

    Returns:
        {"BLEU-1", ..., "BLEU-4", "METEOR", "ROUGE-L", "CIDEr": corpus scores, "n_clips": int,
        "per_clip": {clip id: {the same metric names: score of that clip}}}; or only
        {"skipped": reason} when pycocoevalcap or java is missing, or the Java work fails or
        runs out of time. Those never raise.

    Raises:
        ValueError: candidates and references that do not match or are empty.
    """
    clips = _check_caption_inputs(candidates, references)
    try:
        from pycocoevalcap.bleu.bleu import Bleu  # type: ignore[import-untyped]
        from pycocoevalcap.cider.cider import Cider  # type: ignore[import-untyped]
        from pycocoevalcap.meteor import meteor  # type: ignore[import-untyped]
        from pycocoevalcap.rouge.rouge import Rouge  # type: ignore[import-untyped]
        from pycocoevalcap.tokenizer import ptbtokenizer  # type: ignore[import-untyped]
    except ImportError as error:
        return {"skipped": PYCOCOEVALCAP_MISSING.format(error=error)}
    java = shutil.which("java")
    if java is None:
        return {"skipped": JAVA_MISSING}
    tokenizer_jar = Path(ptbtokenizer.__file__).parent / ptbtokenizer.STANFORD_CORENLP_3_4_1_JAR
    meteor_jar = Path(meteor.__file__).parent / meteor.METEOR_JAR
    for jar in (tokenizer_jar, meteor_jar):
        if not jar.is_file():
            return {"skipped": f"pycocoevalcap is incomplete: {jar} is missing"}

    deadline = time.monotonic() + timeout_s
    # one sentence per line: candidates first, then every clip's references in order
    sentences = [candidates[clip] for clip in clips]
    for clip in clips:
        sentences.extend(references[clip])
    try:
        tokens = _ptb_tokenize(
            java, tokenizer_jar, sentences, set(ptbtokenizer.PUNCTUATIONS), deadline
        )
        res = {i: [tokens[i]] for i in range(len(clips))}
        gts: dict[int, list[str]] = {}
        position = len(clips)
        for i, clip in enumerate(clips):
            gts[i] = tokens[position : position + len(references[clip])]
            position += len(references[clip])
        meteor_score, meteor_scores = _meteor(java, meteor_jar, res, gts, deadline)
    except subprocess.TimeoutExpired as error:
        return {"skipped": f"Java run timed out (timeout_s={timeout_s:g}): {error.cmd[0]}"}
    except (OSError, subprocess.SubprocessError, RuntimeError) as error:
        return {"skipped": f"Java run failed: {error}"}

    bleu, bleu_scores = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_scores = Rouge().compute_score(gts, res)
    cider, cider_scores = Cider().compute_score(gts, res)
    corpus = {f"BLEU-{n + 1}": float(bleu[n]) for n in range(4)}
    corpus |= {"METEOR": meteor_score, "ROUGE-L": float(rouge), "CIDEr": float(cider)}
    per_clip: dict[str, dict[str, float]] = {}
    for i, clip in enumerate(clips):
        row = {f"BLEU-{n + 1}": float(bleu_scores[n][i]) for n in range(4)}
        row |= {
            "METEOR": meteor_scores[i],
            "ROUGE-L": float(rouge_scores[i]),
            "CIDEr": float(cider_scores[i]),
        }
        per_clip[clip] = row
    return {**corpus, "n_clips": len(clips), "per_clip": per_clip}


def _remaining(deadline: float, stage: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise subprocess.TimeoutExpired([f"{stage} (no time left to start it)"], 0)
    return left


def _ptb_tokenize(
    java: str, jar: Path, sentences: list[str], punctuation: set[str], deadline: float
) -> list[str]:
    """Stanford PTBTokenizer, lower-cased, one output line per input line, punctuation dropped."""
    cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer"]
    cmd += ["-preserveLines", "-lowerCase", "-encoding", "utf-8"]
    with tempfile.TemporaryDirectory(prefix="uts-ptb-") as folder:
        path = Path(folder) / "sentences.txt"
        path.write_text("\n".join(_LINE_BREAKS.sub(" ", s) for s in sentences), encoding="utf-8")
        cmd.append(str(path))
        timeout = _remaining(deadline, "the PTB tokenizer")
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            raise subprocess.TimeoutExpired(["the PTB tokenizer"], timeout) from None
    if done.returncode != 0:
        raise RuntimeError(
            f"PTB tokenizer exited with status {done.returncode}: "
            f"{done.stderr.decode(errors='replace').strip()[-500:]}"
        )
    lines = done.stdout.decode("utf-8", errors="replace").split("\n")
    if len(lines) < len(sentences):
        raise RuntimeError(
            f"PTB tokenizer returned {len(lines)} lines for {len(sentences)} sentences"
        )
    return [
        " ".join(word for word in line.rstrip().split(" ") if word not in punctuation)
        for line in lines[: len(sentences)]
    ]


def _meteor(
    java: str, jar: Path, res: dict[int, list[str]], gts: dict[int, list[str]], deadline: float
) -> tuple[float, list[float]]:
    """METEOR 1.5 (English, normalised) over the clips: (corpus score, per-clip scores).

    The jar is driven in its -stdio mode, as pycocoevalcap does: one SCORE line per clip returns
    sufficient statistics, one EVAL line over all of them returns per-clip and corpus scores. The
    exchange runs in a thread so that the deadline can kill a stuck JVM.
    """
    cmd = [java, "-jar", _METEOR_HEAP, str(jar), "-", "-", "-stdio", "-l", "en", "-norm"]
    outcome: dict[str, Any] = {}
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            cmd, cwd=jar.parent, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr
        )
        stdin, stdout = process.stdin, process.stdout
        assert stdin is not None and stdout is not None  # both were asked for as pipes

        def talk() -> None:
            try:
                outcome["result"] = _meteor_exchange(stdin, stdout, res, gts)
            except Exception as error:
                outcome["error"] = error

        thread = threading.Thread(target=talk, name="meteor-exchange", daemon=True)
        thread.start()
        try:
            timeout = _remaining(deadline, "METEOR")
            thread.join(timeout)
            if thread.is_alive():
                raise subprocess.TimeoutExpired(["METEOR"], timeout)
        finally:
            if process.poll() is None:
                process.kill()  # also unblocks the thread: its pipe reads hit end of file
            thread.join()
            with contextlib.suppress(OSError):
                stdin.close()
            stdout.close()
            process.wait()
        if "error" in outcome:
            stderr.seek(0)
            detail = stderr.read().decode(errors="replace").strip()[-500:]
            raise RuntimeError(f"METEOR failed: {outcome['error']} {detail}".strip())
    score, scores = outcome["result"]
    return score, scores


def _meteor_exchange(
    stdin: IO[bytes], stdout: IO[bytes], res: dict[int, list[str]], gts: dict[int, list[str]]
) -> tuple[float, list[float]]:
    def ask(line: str) -> None:
        stdin.write((line + "\n").encode("utf-8"))
        stdin.flush()

    def answer() -> str:
        line = stdout.readline()
        if not line:
            raise RuntimeError("the METEOR process ended before answering")
        return line.decode("utf-8", errors="replace").strip()

    def clean(text: str) -> str:  # ' ||| ' separates fields of the protocol
        return " ".join(text.replace("|||", " ").split())

    stats = []
    for clip in res:
        ask(" ||| ".join(["SCORE", *(clean(r) for r in gts[clip]), clean(res[clip][0])]))
        stats.append(answer())
    ask(" ||| ".join(["EVAL", *stats]))
    scores = [float(answer()) for _ in stats]
    return float(answer()), scores
