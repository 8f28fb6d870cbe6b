"""The ONNX embedding backend (GRADER_EMBEDDING_BACKEND=onnx) with the real packaged model."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, grader_cmd

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'grader[onnx]')")

from grader.embedding.onnx import ONNX_NAME, OnnxEmbedder, packaged_onnx_path  # noqa: E402

try:
    packaged_onnx_path()
except Exception as exc:  # noqa: BLE001 - the model package is missing: say so
    pytest.skip(f"the ONNX model package is not installed: {exc}", allow_module_level=True)


@pytest.fixture(scope="module")
def onnx_embedder():
    return OnnxEmbedder(threads=2, batch_size=4)


def test_vectors_are_unit_length_float32_and_deterministic(onnx_embedder):
    texts = ["PUT replaces the whole resource.", "", "A much longer sentence " * 80, "Short."]
    a = onnx_embedder.embed(texts)
    assert a.shape == (4, 384) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    # same vectors whatever the batch composition and order
    b = OnnxEmbedder(threads=1, batch_size=64).embed(texts[::-1])[::-1]
    assert np.allclose(a, b, atol=1e-5)
    assert np.array_equal(a, onnx_embedder.embed(texts))
    assert onnx_embedder.embed([]).shape == (0, 384)


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(onnx_embedder):
    base, para, other = onnx_embedder.embed([
        "PATCH applies a partial update, changing only the fields that are sent.",
        "With PATCH you modify just some of the resource's fields instead of replacing it.",
        "Docker packages an application and its dependencies into a container image.",
    ])
    assert base @ para > base @ other + 0.2


def test_name_differs_from_the_torch_model(onnx_embedder):
    from grader.config import DEFAULT_MODEL

    assert onnx_embedder.name == ONNX_NAME != DEFAULT_MODEL


def test_make_embedder_picks_the_onnx_backend(monkeypatch, tmp_path):
    from grader.config import Settings
    from grader.embedding import CachedEmbedder, make_embedder

    monkeypatch.setenv("GRADER_EMBEDDING_BACKEND", "onnx")
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    s = Settings()
    inner = make_embedder(s, cache=False)
    assert isinstance(inner, OnnxEmbedder) and inner.threads == s.thread_count()
    cached = make_embedder(s)
    assert isinstance(cached, CachedEmbedder) and cached.name == ONNX_NAME
    v = cached.embed(["Docker packages an app."])
    assert np.allclose(v, inner.embed(["Docker packages an app."]), atol=1e-6)


def test_another_model_setting_is_refused(monkeypatch):
    from grader.config import Settings
    from grader.embedding import make_embedder
    from grader.errors import ConfigError

    monkeypatch.setenv("GRADER_EMBEDDING_BACKEND", "onnx")
    monkeypatch.setenv("GRADER_EMBEDDING_MODEL", "/models/something-else")
    with pytest.raises(ConfigError, match="onnx"):
        make_embedder(Settings(), cache=False)


def test_the_model_answer_scores_high_with_the_onnx_backend(bank, onnx_embedder):
    from grader.scoring import Grader

    g = Grader(embedder=onnx_embedder)
    for qid in ("put-vs-patch", "how-jwt-works", "docker"):
        q = bank.questions[qid]
        res = g.grade(q, bank.rubrics[qid], q.model_answer)
        assert res.score >= 9, (qid, res.score)
        assert res.model == ONNX_NAME


def test_grade_cli_with_onnx_backend_never_imports_torch(tmp_path):
    env = dict(os.environ, GRADER_EMBEDDING_BACKEND="onnx", GRADER_CACHE_DIR=str(tmp_path / "cache"))
    model_answer = "PUT replaces the entire resource; PATCH applies a partial update."
    r = subprocess.run(grader_cmd() + ["grade", "-q", "put-vs-patch", "--format", "json", "--answer", model_answer],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["model"] == ONNX_NAME
    code = ("import sys, os; os.environ.update(" + repr({k: env[k] for k in env if k.startswith("GRADER_")}) + ");"
            "from grader.config import get_settings; from grader.scoring import grader_from_settings;"
            "g = grader_from_settings(get_settings()); g.embedder.embed(['x']);"
            "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.stdout.strip() == "False False", r.stderr


def test_cli_import_does_not_import_onnxruntime():
    code = ("import sys, grader.cli; heavy=[m for m in ('onnxruntime','tokenizers','grader.embedding.onnx') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
