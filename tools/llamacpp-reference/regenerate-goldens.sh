#!/usr/bin/env bash
# Regenerates the llama.cpp goldens Pargs' tests compare against (tests/Pargs.Tests/Checkpoints/LlamaCppGoldens/):
# writes the tiny seeded reference checkpoints (pargs reference-checkpoint), converts them and the shipped
# stories260K GGUF (v1, which llama.cpp no longer reads) with `pargs convert --to gguf`, and evaluates each
# GGUF in llama.cpp through node-llama-cpp (reference.mjs). Run from anywhere; needs the .NET SDK and Node 20.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/tests/Pargs.Tests/Checkpoints/LlamaCppGoldens"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$here" && npm ci --no-audit --no-fund)
dotnet build "$root/src/Pargs.Cli" -c Release -v quiet -nologo
pargs() { dotnet "$root/src/Pargs.Cli/bin/Release/net10.0/linux-x64/Pargs.Cli.dll" "$@"; }

text="Once upon a time the girl waved at the little boat."
mkdir -p "$out"
for name in llama mistral qwen2 gpt2; do
    pargs reference-checkpoint "$name" --out "$work/$name"
    pargs convert "$work/$name" --to gguf --out "$work/$name.gguf" --type f32
    node "$here/reference.mjs" --model "$work/$name.gguf" --name "$name" --text "$text" > "$out/$name.json"
done
# Quantized files (pargs convert --type q8_0 | q4_0): llama.cpp must load them; LlamaCppQuantizedGoldenTests.
for type in q8_0 q4_0; do
    pargs convert "$work/llama" --to gguf --out "$work/llama-$type.gguf" --type "$type"
    node "$here/reference.mjs" --model "$work/llama-$type.gguf" --name "llama-$type" --text "$text" > "$out/llama-$type.json"
done
# Q4_K_M (pargs convert --type q4_k: Q4_K with Q6_K attn_v/ffn_down/head by llama-quantize's rules) needs rows of whole
# 256-value super-blocks: the reference llama widened to 256.
pargs reference-checkpoint llama-256 --out "$work/llama-256"
pargs convert "$work/llama-256" --to gguf --out "$work/llama-256-q4_k.gguf" --type q4_k
node "$here/reference.mjs" --model "$work/llama-256-q4_k.gguf" --name "llama-256-q4_k" --text "$text" > "$out/llama-256-q4_k.json"
pargs convert "$root/data/models/stories260K/tinyllamas-stories-260k-f32.gguf" --to gguf --out "$work/stories260K.gguf" --type f32
node "$here/reference.mjs" --model "$work/stories260K.gguf" --name stories260K --text "$text" > "$out/stories260K.json"
ls -l "$out"
