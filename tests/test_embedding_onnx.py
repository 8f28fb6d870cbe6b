"""The default embedding backend: the packaged MiniLM's own weights on ONNX Runtime."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, grader_cmd
from grader.config import DEFAULT_MODEL
from grader.embedding.onnx import OnnxEmbedder
from grader.embedding.onnx_model import MIN_COSINE, ONNX_FILE, read_layout
from grader.errors import ConfigError


@pytest.fixture(scope="module")
def onnx_embedder():
    return OnnxEmbedder(threads=2, batch_size=4)


@pytest.fixture(scope="module")
def torch_embedder():
    from grader.embedding.sentence_transformers import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(threads=2)


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


def test_the_same_vectors_and_lengths_as_sentence_transformers_on_the_bank(bank, onnx_embedder, torch_embedder):
    texts = [t for q in bank.questions.values() for t in (q.question, q.model_answer)]
    texts += [e.answer for r in bank.rubrics.values() for e in r.exemplars[:3]]
    texts += ["", "x", "SELECT * FROM t; -- ünïcödé 数据库 🚀", "word " * 400]
    cos = (onnx_embedder.embed(texts) * torch_embedder.embed(texts)).sum(axis=1)
    assert cos.min() >= MIN_COSINE, texts[int(cos.argmin())]
    assert onnx_embedder.lengths(texts) == torch_embedder.lengths(texts)


def test_shares_the_torch_backends_name_so_cached_vectors_are_shared(monkeypatch, tmp_path, onnx_embedder):
    from grader.config import Settings
    from grader.embedding import CachedEmbedder, make_embedder

    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    s = Settings()
    assert s.embedding_backend == "onnx"  # the default
    inner = make_embedder(s, cache=False)
    assert isinstance(inner, OnnxEmbedder) and inner.threads == s.thread_count()
    cached = make_embedder(s)
    assert isinstance(cached, CachedEmbedder) and cached.name == DEFAULT_MODEL == onnx_embedder.name
    v = cached.embed(["Docker packages an app."])
    assert np.allclose(v, inner.embed(["Docker packages an app."]), atol=1e-6)


def test_a_model_it_cannot_run_is_refused_with_the_way_out(tmp_path, onnx_embedder):
    model = tmp_path / "cls-model"
    shutil.copytree(onnx_embedder.model_dir, model, ignore=shutil.ignore_patterns("*.safetensors"))
    pooling = model / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text())
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    pooling.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="mean-pooled.*sentence-transformers"):
        read_layout(model)
    with pytest.raises(ConfigError, match="no sentence-transformers model folder"):
        OnnxEmbedder(str(tmp_path / "nothing-here"))


def test_a_broken_copy_says_how_to_make_it_again(tmp_path, onnx_embedder):
    store = tmp_path / "store"
    emb = OnnxEmbedder(threads=1, store=store)
    shutil.copytree(onnx_embedder.copy_dir, emb.copy_dir)
    (emb.copy_dir / ONNX_FILE).write_bytes(b"not an onnx file")
    with pytest.raises(ConfigError, match="delete .* to make it again"):
        emb.embed(["x"])


def test_first_use_makes_the_copy_and_no_run_imports_torch(tmp_path):
    """A fresh store: the first grade makes the checked copy (saying so on stderr); a grade
    then, and every import of the pipeline, runs without torch."""
    env = dict(os.environ, GRADER_ONNX_DIR=str(tmp_path / "onnx"), GRADER_CACHE_DIR=str(tmp_path / "cache"))
    answer = "PUT replaces the entire resource; PATCH applies a partial update."
    cmd = grader_cmd() + ["grade", "-q", "put-vs-patch", "--format", "json", "--answer", answer]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert first.returncode == 0, first.stderr
    assert "making the ONNX copy" in first.stderr
    meta = json.loads(next((tmp_path / "onnx").glob("*/export.json")).read_text())
    assert meta["least_cosine"] >= MIN_COSINE and meta["model"] == DEFAULT_MODEL
    env["GRADER_CACHE_DIR"] = str(tmp_path / "cache2")  # nothing cached: the model runs
    code = ("import sys, json; from grader.cli import main; sys.argv = " + repr(["grader"] + cmd[-7:]) + ";\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(['torch' in sys.modules, 'sentence_transformers' in sys.modules]))")
    again = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env,
                           timeout=120)
    assert "making the ONNX copy" not in again.stderr
    lines = again.stdout.strip().splitlines()
    assert json.loads(lines[-1]) == [False, False], again.stderr
    assert json.loads("\n".join(lines[:-1]))["score"] == json.loads(first.stdout)["score"]


def test_cli_import_does_not_import_onnxruntime():
    code = ("import sys, grader.cli; heavy=[m for m in ('onnxruntime','tokenizers','grader.embedding.onnx') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
