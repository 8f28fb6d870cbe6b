"""A trained grading model as a scorer: a cross-encoder folder from `grader train` (or any
one-logit sequence classifier) scoring (reference answer, answer) pairs, deterministically
(eval mode, no dropout, pinned thread count, offline)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from grader.errors import InputError
from grader.fsutil import file_sha256
from grader.models import Signal
from grader.scoring.calibration import MODEL_SIGNAL
from grader.scoring.evidence import Evidence
from grader.scoring.prepare import Prepared

META_FILE = "grader-train.json"
# A model folder's own calibration, fitted on its held-out answers.
CALIBRATION_FILE = "calibration.json"


def _offline(threads: int) -> None:
    from grader.embedding.base import configure_threads, offline_transformers

    offline_transformers()
    configure_threads(threads)
    import torch

    torch.set_num_threads(threads)


class TrainedModel:
    """A cross-encoder folder (trained here, or any one-logit sequence classifier):
    `score(references, answers)` -> fractions in 0..1 (sigmoid of the logit)."""

    def __init__(self, model, tokenizer, *, name: str, max_length: int = 256, batch_size: int = 32):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = max_length
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str | Path, *, threads: int = 2, batch_size: int = 32) -> "TrainedModel":
        p = Path(path)
        if not (p / "config.json").is_file():
            raise InputError(f"--model: {p} is not a trained model folder (no config.json)")
        _offline(threads)
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        meta = read_meta(p)
        model = AutoModelForSequenceClassification.from_pretrained(str(p))
        model.eval()
        tok = AutoTokenizer.from_pretrained(str(p))
        return cls(model, tok, name=model_identity(p),
                   max_length=int(meta.get("settings", {}).get("max_length", 256)), batch_size=batch_size)

    def score(self, references: Sequence[str], answers: Sequence[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        import torch

        self.model.eval()
        out = np.zeros(len(answers), dtype=float)
        # longest first, so padding is small and the batches are the same whatever the order given
        order = sorted(range(len(answers)), key=lambda i: (-(len(references[i]) + len(answers[i])), i))
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                idx = order[s:s + self.batch_size]
                enc = self.tokenizer([references[i] for i in idx], [answers[i] or "" for i in idx],
                                     truncation=True, max_length=self.max_length, padding=True, return_tensors="pt")
                logits = self.model(**enc).logits.reshape(-1).float()
                out[idx] = torch.sigmoid(logits).numpy()
                if progress:
                    progress(len(idx))
        return out


def model_identity(path: Path) -> str:
    """`folder@hash`: the folder's name and the first 12 hex digits of its weights' sha256,
    so a result says which weights scored it even after the folder is moved or retrained."""
    p = Path(path)
    weights = sorted(p.glob("*.safetensors")) or sorted(p.glob("pytorch_model*.bin"))
    digest = file_sha256(weights[0])[:12] if weights else "unknown"
    return f"{p.resolve().name}@{digest}"


def same_weights(a: str | None, b: str | None) -> bool:
    """Whether two model identities name the same weights (folder names may differ)."""
    return bool(a and b) and a.rpartition("@")[2] == b.rpartition("@")[2]


def read_meta(path: Path) -> dict:
    f = Path(path) / META_FILE
    if not f.is_file():
        return {}
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class TrainedScorer:
    """The trained model's score of each answer against its model answer (signal
    `trained_model`, 0..1)."""

    def __init__(self, model: TrainedModel):
        self.model = model
        self.name = model.name

    def texts(self, p: Prepared) -> list[str]:
        """Nothing for the embedder: the model reads the texts itself."""
        return []

    def score(self, answers: Sequence[Prepared], vectors: Mapping[str, np.ndarray]) -> list[Evidence]:
        """One `trained_model` signal per non-empty answer."""
        idx = [i for i, p in enumerate(answers) if not p.empty]
        out = [Evidence() for _ in answers]
        if idx:
            got = self.model.score([answers[i].item.question.model_answer for i in idx],
                                   [answers[i].text for i in idx])
            for i, v in zip(idx, np.round(np.asarray(got, dtype=float), 4)):
                out[i] = Evidence(signals=[Signal(name=MODEL_SIGNAL, value=float(v), scorer=self.name,
                                                  explanation=f"trained model {self.name}")])
        return out
