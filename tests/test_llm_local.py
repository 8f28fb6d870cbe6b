"""grader.llm.local: which runtime serves the offline model, and the prebuilt one really serving.

The serving test starts the real xllamacpp server (in a child process, as `make llm-server`
does) with the real bundled GGUF: about two seconds.  It is skipped, saying why, where
`make local-llm` has not been run.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

import pytest

from conftest import ROOT

from grader.llm import local


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check(env_extra: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "grader.llm.local", "check"], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=120)


def test_check_names_a_missing_gguf_and_fails(tmp_path):
    r = _check({"GRADER_LLM_GGUF": str(tmp_path / "nope.gguf")})
    assert r.returncode == 1
    assert "model GGUF: missing" in r.stdout and "GRADER_LLM_GGUF" in r.stdout
    assert "Traceback" not in r.stderr


def test_check_with_no_runtime_says_so(tmp_path):
    r = _check({"GRADER_LLM_RUNTIME": "llama-server", "GRADER_LLAMA_SERVER": str(tmp_path / "none")})
    assert r.returncode == 1
    assert "runtime:    missing (make local-llm)" in r.stdout


def test_wheel_command_is_a_pinned_python_launcher(tmp_path):
    cmd = local.serve_command(9999, tmp_path / "m.gguf", threads=2, seed=7, runtime_name="xllamacpp")
    assert cmd[:3] == [sys.executable, "-m", "grader.llm.local"]
    assert cmd[cmd.index("--threads") + 1] == "2" and cmd[cmd.index("--seed") + 1] == "7"
    assert cmd[cmd.index("--runtime") + 1] == "xllamacpp"


@pytest.fixture(scope="module")
def wheel_server():
    rt, gguf = local.runtime("xllamacpp"), local.gguf_path()
    if rt is None or gguf is None:
        pytest.skip("xllamacpp or the bundled GGUF is not installed: run `make local-llm`")
    port = _free_port()
    proc = subprocess.Popen(local.serve_command(port, gguf, runtime_name="xllamacpp"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        assert local.wait_healthy(url, 60, proc), "the xllamacpp server did not start"
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_wheel_serves_the_model_on_loopback_only_and_stops_on_sigterm(wheel_server):
    url, proc = wheel_server
    req = urllib.request.Request(url + "/models", headers={"Origin": "http://evil.example"})
    with urllib.request.urlopen(req, timeout=10) as r:
        models = json.loads(r.read())
        allowed = r.headers.get("Access-Control-Allow-Origin")
    assert local.MODEL_NAME in [m["id"] for m in models["data"]]
    assert allowed != "*" and "evil" not in (allowed or "")  # its default allows any origin
    with pytest.raises(OSError):  # not on other addresses of this machine
        host = socket.gethostbyname(socket.gethostname())
        if host.startswith("127."):
            raise OSError("only loopback here")
        socket.create_connection((host, int(url.rsplit(":", 1)[1].split("/")[0])), timeout=2)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
