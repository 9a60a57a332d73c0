#!/usr/bin/env bash
# Finds, on this machine, the float16 GELU rounding ties llama.cpp resolved the other way (LlamaCppGeluTieTests), for
# every case, whatever lists are committed, and prints them in the committed form:
#   <torch CPU capability> / <case> / <layer,position,column;...> / <worst gap with them> (table alone ...; N forwards)
# Add the lines to LlamaCppGeluTieTests.CommittedFlips under that capability (say which machine found them).
# Each case is still asserted (each flip a tie, the gap within the case's bound), so a failure here means this machine
# cannot reach the bound with ties alone. ~5-20 s per case on 2 cores.
# Usage: tools/gelu-ties/search.sh   (extra arguments go to dotnet test, e.g. --no-build)
set -euo pipefail
cd "$(dirname "$0")/../.."
PARGS_GELU_TIE_SEARCH=1 dotnet test tests/Pargs.Tests -c Release --filter "FullyQualifiedName~LlamaCppGeluTieTests" \
  --logger "console;verbosity=detailed" "$@" | grep -E '^ *[A-Z0-9_]+ / |^ +(gemma|gpt)[a-z_0-9-]*: |Test Run (Successful|Failed)'
