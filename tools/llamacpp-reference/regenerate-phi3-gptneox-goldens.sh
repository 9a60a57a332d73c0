#!/usr/bin/env bash
# Regenerates the llama.cpp goldens of the Phi-3 and GPT-NeoX families (tests/Pargs.Tests/Checkpoints/LlamaCppGoldens/
# phi3.json, gpt_neox.json, gpt_neox-sequential.json): writes the tiny seeded reference checkpoints with every
# structural field set (pargs reference-checkpoint), converts them with `pargs convert --to gguf` (llama.cpp's "phi3"
# and "gptneox" architectures) and evaluates each GGUF in llama.cpp through node-llama-cpp (reference.mjs, shared with
# regenerate-goldens.sh). Run from anywhere; needs the .NET SDK and Node 20.
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
# The folders are numbered, not named: the GGUF's general.name is the folder's name, and llama.cpp gives a model whose
# name contains "phi3" Phi-3's special-token attributes, looking up "<|endoftext|>", which the tiny vocabulary lacks.
index=0
for name in phi3 gpt_neox gpt_neox-sequential; do
    index=$((index + 1))
    pargs reference-checkpoint "$name" --out "$work/reference-$index"
    pargs convert "$work/reference-$index" --to gguf --out "$work/reference-$index.gguf" --type f32
    node "$here/reference.mjs" --model "$work/reference-$index.gguf" --name "$name" --text "$text" > "$out/$name.json"
done
ls -l "$out"
