#!/usr/bin/env bash
# The yardstick: writes a random checkpoint of a real shape (pargs reference-checkpoint), converts it with
# `pargs convert --to gguf` at f32, f16 and bf16, and times llama.cpp's greedy decoding and 512-token prefill
# on each file at 1 and 2 threads (llamacpp-decode.mjs). Run on an idle machine; numbers go to stdout as JSON.
#   docs/yardstick/run.sh [SHAPE]    SHAPE: llama-110m (default), qwen2.5-0.5b, llama3.2-1b
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
shape="${1:-llama-110m}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$root/tools/llamacpp-reference" && npm ci --no-audit --no-fund >/dev/null)
dotnet build "$root/src/Pargs.Cli" -c Release -v quiet -nologo >/dev/null
pargs() { dotnet "$root/src/Pargs.Cli/bin/Release/net10.0/linux-x64/Pargs.Cli.dll" "$@"; }
pargs reference-checkpoint "$shape" --out "$work/$shape"
for type in f32 f16 bf16; do
    pargs convert "$work/$shape" --to gguf --out "$work/$shape-$type.gguf" --type "$type" >&2
    node "$here/llamacpp-decode.mjs" --model "$work/$shape-$type.gguf" --threads 1,2 --new-tokens 64 --prefill 512 --repeats 3
done
