#!/usr/bin/env bash
# The project's test command (README "Run the tests"): vet, staticcheck,
# every test under the race detector, the full-size cross-process run
# without it, every fuzz target for a short time, and the benchmark harness
# in --quick mode (that it runs and its output parses; never a timing
# assertion).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH:$(go env GOPATH)/bin"

STATICCHECK_VERSION=v0.8.2

# A test process that dies (a panic, a timeout's SIGKILL) runs no cleanup:
# what it left in /dev/shm (names testutil gives: shmring-test-PID-N) is
# removed when the run ends, pass or fail, and fails the run.
dead_leftovers() {
  local f pid left=()
  for f in /dev/shm/shmring-test-* /dev/shm/.shmring-test-*; do
    [[ -e $f ]] || continue
    pid=${f##*/}; pid=${pid#.}; pid=${pid#shmring-test-}; pid=${pid%%-*}
    if [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null; then
      left+=("$f")
    fi
  done
  ((${#left[@]} == 0)) && return 0
  echo "FAIL: test processes that died left ${#left[@]} file(s) in /dev/shm (removed): ${left[*]}" >&2
  rm -f "${left[@]}"
  return 1
}
trap 'rc=$?; dead_leftovers || rc=1; exit $rc' EXIT

# IPC_EXPORTS_MAX: the most exported identifiers package ipc may have
# (issue 14's API 1.0 budget; scripts/exports.sh counts them). The run fails
# if ipc exports more: a new export must displace an old one or raise this
# on purpose, with the reason in the commit.
IPC_EXPORTS_MAX=60

if ! command -v staticcheck >/dev/null || ! staticcheck -version | grep -q "${STATICCHECK_VERSION#v}"; then
  echo "== installing staticcheck $STATICCHECK_VERSION"
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [[ -n $unformatted ]]; then echo "gofmt would change: $unformatted"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
staticcheck ./...
echo "== ipc's exported identifiers (scripts/exports.sh; limit: ${IPC_EXPORTS_MAX:-none, print only})"
./scripts/exports.sh ${IPC_EXPORTS_MAX:+-max "$IPC_EXPORTS_MAX"} ./ipc
echo "ipc links $(go list -deps ./ipc | wc -l) packages (go list -deps; TestIPCDependencies bounds it)"
echo "== go test -race"
go test -race -count=1 -timeout 10m ./...
echo "== cross-process, full size (10M messages), MPSC chaos and the overwrite race, no race detector"
go test -count=1 -timeout 5m -run '^(TestCrossProcess|TestMPSCChaos)$' ./ipc
go test -count=1 -timeout 5m -run '^(TestOverwrite|TestSharedOverwriteRace)$' ./ring
echo "== fuzz targets, 10 s each (scripts/fuzz.sh runs them longer)"
FUZZTIME=10s ./scripts/fuzz.sh
if [[ -d bench/cmd/shmbench ]]; then
  echo "== benchmark harness, --quick"
  go run ./bench/cmd/shmbench --quick --json --plot /tmp/shmbench-quick.svg > /tmp/shmbench-quick.json
  go run ./bench/cmd/shmbench --check-json /tmp/shmbench-quick.json
fi
echo "== ok"
