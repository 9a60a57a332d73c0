#!/usr/bin/env bash
# Regenerates the Gemma-2 / Gemma-3 llama.cpp goldens (tests/Pargs.Tests/Checkpoints/LlamaCppGoldens/gemma2.json,
# gemma3.json): writes the tiny seeded Gemma checkpoints (pargs reference-checkpoint gemma2|gemma3, see
# GemmaReferenceCheckpoints), converts them with `pargs convert --to gguf` and evaluates each GGUF in llama.cpp
# through node-llama-cpp (reference.mjs). Kept apart from regenerate-goldens.sh so the families' goldens are
# regenerated independently. Run from anywhere; needs the .NET SDK and Node 20.
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
for name in gemma2 gemma3; do
    pargs reference-checkpoint "$name" --out "$work/$name"
    pargs convert "$work/$name" --to gguf --out "$work/$name.gguf" --type f32
    node "$here/reference.mjs" --model "$work/$name.gguf" --name "$name" --text "$text" > "$out/$name.json"
done
ls -l "$out"/gemma*.json
