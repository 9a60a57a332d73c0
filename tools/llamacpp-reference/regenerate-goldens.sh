#!/usr/bin/env bash
# Regenerates the llama.cpp goldens Pargs' tests compare against (tests/Pargs.Tests/Checkpoints/LlamaCppGoldens/):
# writes the tiny seeded reference checkpoints with every structural field set (pargs reference-checkpoint), converts
# them (and the shipped stories260K GGUF v1, which llama.cpp no longer reads) with `pargs convert --to gguf`, and
# evaluates each GGUF in llama.cpp through node-llama-cpp (reference.mjs). Run from anywhere; needs the .NET SDK and
# Node 20.
#
#   regenerate-goldens.sh                 # every group
#   regenerate-goldens.sh gemma phi3-gptneox   # only these groups (each family's goldens regenerate independently)
#
# Groups: core (llama, llama3, mistral, qwen2, qwen3, gpt2, the quantized llama files, stories260K), gemma (gemma2, gemma3),
# phi3-gptneox (phi3, gpt_neox, gpt_neox-sequential).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/tests/Pargs.Tests/Checkpoints/LlamaCppGoldens"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
groups=("$@")
[ ${#groups[@]} -eq 0 ] && groups=(core gemma phi3-gptneox)
for group in "${groups[@]}"; do
    case "$group" in core|gemma|phi3-gptneox) ;; *) echo "unknown group '$group' (core, gemma, phi3-gptneox)" >&2; exit 2 ;; esac
done

(cd "$here" && npm ci --no-audit --no-fund)
dotnet build "$root/src/Pargs.Cli" -c Release -v quiet -nologo
pargs() { dotnet "$root/src/Pargs.Cli/bin/Release/net10.0/linux-x64/Pargs.Cli.dll" "$@"; }

text="Once upon a time the girl waved at the little boat."
mkdir -p "$out"

# golden NAME GGUF: llama.cpp's next-token log-probabilities for the text, as tests/…/LlamaCppGoldens/NAME.json.
golden() { node "$here/reference.mjs" --model "$2" --name "$1" --text "$text" > "$out/$1.json"; }

# reference NAME FOLDER: the seeded checkpoint NAME written to FOLDER and converted to FOLDER.gguf (float32).
reference() {
    pargs reference-checkpoint "$1" --out "$2"
    pargs convert "$2" --to gguf --out "$2.gguf" --type f32
}

for group in "${groups[@]}"; do
    case "$group" in
    core)
        for name in llama llama3 mistral qwen2 qwen3 gpt2; do reference "$name" "$work/$name"; golden "$name" "$work/$name.gguf"; done
        # Quantized files (pargs convert --type q8_0 | q4_0): llama.cpp must load them; LlamaCppQuantizedGoldenTests.
        for type in q8_0 q4_0; do
            pargs convert "$work/llama" --to gguf --out "$work/llama-$type.gguf" --type "$type"
            golden "llama-$type" "$work/llama-$type.gguf"
        done
        # Q4_K_M (pargs convert --type q4_k: Q4_K with Q6_K attn_v/ffn_down/head by llama-quantize's rules) needs rows
        # of whole 256-value super-blocks: the reference llama widened to 256.
        pargs reference-checkpoint llama-256 --out "$work/llama-256"
        pargs convert "$work/llama-256" --to gguf --out "$work/llama-256-q4_k.gguf" --type q4_k
        golden llama-256-q4_k "$work/llama-256-q4_k.gguf"
        pargs convert "$root/data/models/stories260K/tinyllamas-stories-260k-f32.gguf" --to gguf --out "$work/stories260K.gguf" --type f32
        golden stories260K "$work/stories260K.gguf"
        ;;
    gemma)
        # Gemma-2 / Gemma-3: GemmaReferenceCheckpoints (sliding windows, soft-caps, per-layer rotary bases).
        for name in gemma2 gemma3; do reference "$name" "$work/$name"; golden "$name" "$work/$name.gguf"; done
        ;;
    phi3-gptneox)
        # The folders are numbered, not named: the GGUF's general.name is the folder's name, and llama.cpp gives a model
        # whose name contains "phi3" Phi-3's special-token attributes, looking up "<|endoftext|>", which the tiny
        # vocabulary lacks.
        index=0
        for name in phi3 gpt_neox gpt_neox-sequential; do
            index=$((index + 1))
            reference "$name" "$work/reference-$index"
            golden "$name" "$work/reference-$index.gguf"
        done
        ;;
    esac
done
ls -l "$out"
