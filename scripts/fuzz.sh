#!/usr/bin/env bash
# Runs every fuzz target for FUZZTIME each (default 10m), one after the
# other. A crasher is written under fuzz/testdata/fuzz/<Target>/ by the Go
# fuzzer: commit it, it becomes a regression test that `go test ./fuzz` runs.
# Minimisation of a new input is capped at 2 s: with 4 KiB header pages the
# default (60 s) spends most of a run minimising.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
time=${FUZZTIME:-10m}
for target in $(grep -ho '^func Fuzz[A-Za-z]*' fuzz/*_test.go | sed 's/func //'); do
  echo "== $target for $time"
  go test -run '^$' -fuzz "^${target}\$" -fuzztime "$time" -fuzzminimizetime 2s ./fuzz
done
