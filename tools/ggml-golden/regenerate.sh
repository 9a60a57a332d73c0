#!/usr/bin/env bash
# Regenerates tests/Pargs.Tests/Weights/Golden/ggml-quants.bin: llama.cpp's own reference quantizers
# (quantize_row_*_ref), dequantizers and f16/bf16 conversions, run on fixed inputs, so Pargs' block formats
# are checked bit for bit against the library that reads and writes GGUF files.
#
# The ggml library comes prebuilt in node-llama-cpp 3.21.1 (llama.cpp release v0.4.0, linux-x64 CPU build);
# ggml_golden.c (ours) loads its libggml-base.so with dlopen and calls the exported functions.
# Needs: node/npm (npm registry), gcc. Nothing is downloaded except the npm package.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cd "$here"
# --ignore-scripts: only the prebuilt binaries are needed, not node-llama-cpp's post-install build step.
npm install --no-audit --no-fund --ignore-scripts --save-exact node-llama-cpp@3.21.1 >/dev/null
npm install --no-audit --no-fund --ignore-scripts --no-save @node-llama-cpp/linux-x64@3.21.1 >/dev/null
lib="$here/node_modules/@node-llama-cpp/linux-x64/bins/linux-x64/libggml-base.so"
test -f "$lib" || { echo "missing $lib" >&2; exit 1; }
gcc -O1 -std=c11 -Wall -o "$here/ggml_golden" "$here/ggml_golden.c" -ldl -lm
mkdir -p "$repo/tests/Pargs.Tests/Weights/Golden"
"$here/ggml_golden" "$lib" "$repo/tests/Pargs.Tests/Weights/Golden/ggml-quants.bin"
rm -f "$here/ggml_golden"
echo "wrote tests/Pargs.Tests/Weights/Golden/ggml-quants.bin"
