#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` from the sources vendored in the PyPI sdist of
# llama-cpp-python, for a generic AVX2 CPU (the native build's AMX path crashed on the
# first token).  Everything lands under third_party/ (git-ignored).  ~8 min on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PIP=${PIP:-$ROOT/.venv/bin/pip}
TP=$ROOT/third_party
JOBS=${JOBS:-2}
BIN=$TP/bin/llama-server

if [[ -x $BIN && "${1:-}" != "--force" ]]; then
  echo "llama-server already built: $BIN"; exit 0
fi
mkdir -p "$TP/sdist" "$TP/bin"
sdist=$(ls "$TP"/sdist/llama_cpp_python-*.tar.gz 2>/dev/null | head -1 || true)
if [[ -z $sdist ]]; then
  "$PIP" download -q --no-deps --no-binary :all: -d "$TP/sdist" "${LLAMA_CPP_PYTHON_SPEC:-llama-cpp-python}"
  sdist=$(ls "$TP"/sdist/llama_cpp_python-*.tar.gz | head -1)
fi
src=$TP/src/$(basename "$sdist" .tar.gz)
if [[ ! -d $src/vendor/llama.cpp ]]; then
  mkdir -p "$TP/src"
  tar -xzf "$sdist" -C "$TP/src"
fi
cmake -S "$src/vendor/llama.cpp" -B "$TP/build" -DCMAKE_BUILD_TYPE=Release \
  -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX=ON -DGGML_FMA=ON -DGGML_F16C=ON \
  -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DBUILD_SHARED_LIBS=OFF
cmake --build "$TP/build" --target llama-server -j "$JOBS"
cp "$TP/build/bin/llama-server" "$BIN"
echo "built $BIN ($(du -h "$BIN" | cut -f1))"
