"""Embeddings from an OpenAI-compatible /v1/embeddings server on 127.0.0.1, through the real client."""

import hashlib
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from conftest import ROOT, grader_cmd

DIM = 64


def bag_of_words(text: str) -> list[float]:
    """A deterministic stand-in model: hashed word counts (similar texts, similar vectors)."""
    v = np.zeros(DIM)
    for w in text.lower().split():
        v[int(hashlib.md5(w.strip(".,;:").encode()).hexdigest(), 16) % DIM] += 1
    return v.tolist()


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        srv.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if srv.fail_first > 0:
            srv.fail_first -= 1
            self.send_response(429)
            self.send_header("Retry-After", "0")
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "slow down"}}')
            return
        data = [{"object": "embedding", "index": i, "embedding": bag_of_words(t)} for i, t in enumerate(body["input"])]
        out = json.dumps({"object": "list", "data": data, "model": body["model"],
                          "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


@pytest.fixture
def emb_server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests, srv.fail_first = [], 0
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()


def test_openai_embedder_batches_normalises_and_retries(emb_server):
    import openai

    from grader.embedding.openai import OpenAIEmbedder

    emb_server.fail_first = 1
    client = openai.OpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{emb_server.server_port}/v1", max_retries=2)
    e = OpenAIEmbedder(client, "bow", batch_size=2)
    vecs = e.embed(["a b c", "a b d", "x y z"])
    assert vecs.shape == (3, DIM)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    # one 429, then two batches of at most 2 texts
    assert len(emb_server.requests) == 3
    assert [len(r["body"]["input"]) for r in emb_server.requests[1:]] == [2, 1]


def test_grade_with_openai_embeddings_backend(emb_server, tmp_path):
    env = dict(os.environ, GRADER_EMBEDDING_BACKEND="openai", GRADER_EMBEDDING_MODEL="bow",
               GRADER_EMBEDDING_BASE_URL=f"http://127.0.0.1:{emb_server.server_port}/v1",
               GRADER_CACHE_DIR=str(tmp_path / "cache"))
    model_answer = "PUT replaces the entire resource; PATCH applies a partial update."
    r = subprocess.run(grader_cmd() + ["grade", "-q", "put-vs-patch", "--format", "json", "--answer", model_answer],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert res["model"] == "openai:bow"
    assert emb_server.requests and all(q["path"] == "/v1/embeddings" for q in emb_server.requests)
    # torch is never needed on this path
    code = ("import sys, os; os.environ.update(" + repr({k: env[k] for k in env if k.startswith("GRADER_")}) + ");"
            "from grader.config import get_settings; from grader.scoring import grader_from_settings;"
            "g = grader_from_settings(get_settings()); g.embedder.embed(['x']);"
            "print('torch' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.stdout.strip() == "False", r.stderr
