#!/bin/sh
# Re-records tests/Pargs.Tests/Experiments/Goldens/dpo-cross-machine.json: the trained DPO policy's log-probabilities
# of DpoReproducibilityTests' held-out responses, on THIS machine. Run it on the machine that publishes
# docs/results.md (the test then checks every other machine against it within its stated tolerance), and only
# when the DPO algorithm or its test setup changed on purpose.
set -e
cd "$(dirname "$0")/../.."
dotnet build tests/Pargs.Tests -c Debug
PARGS_WRITE_DPO_GOLDEN=1 dotnet test tests/Pargs.Tests --no-build \
  --filter "FullyQualifiedName~DpoReproducibilityTests.Dpo_training_on_this_cpu_matches_the_published_machine_within_the_stated_tolerance"
git diff --stat tests/Pargs.Tests/Experiments/Goldens/dpo-cross-machine.json
