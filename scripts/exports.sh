#!/usr/bin/env bash
# Counts a package's exported identifiers (issue 14: package ipc exports at
# most 60): package-level consts, vars, funcs and types, and the methods of
# exported types; not struct fields, not interface methods, not _test.go
# files. Parsed with go/ast by scripts/exports (no go doc).
#
#   scripts/exports.sh [-v] [-max N] [DIR]
#
# DIR is a package directory relative to the repository's root (default
# ./ipc). -v lists each identifier, one a line, before the total. -max N
# exits 1 if the total is over N; an error (no package there) exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
# Built, not "go run": go run turns every failure into exit status 1.
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
go build -o "$bin/exports" ./scripts/exports
rc=0
"$bin/exports" "$@" || rc=$?
exit "$rc"
