#!/usr/bin/env bash
# ab.sh: shmbench at two commits, rounds interleaved, in one invocation.
#
#   scripts/ab.sh [-r ROUNDS] [-c CASES] [-m MESSAGES] OLD [NEW]
#
# Builds bench/cmd/shmbench at OLD and at NEW (default: the work tree as it
# is), then runs ROUNDS rounds (default 5); each round runs both binaries,
# one round of CASES each, alternating which goes first, so that the VM's
# fast and slow states hit both alike. Prints per case the median rate (or
# round-trip p50) of each side and the median over rounds of NEW/OLD, with
# each round's cache-line probe so the state is visible. The raw JSON of
# every run stays in the directory it names.
set -euo pipefail
rounds=5
cases="shmring-spsc,shmring-spsc-batch64,shmring-mpsc-4p,shmring-mpsc-4p-batch64,c-ring,shmring-spin,shmring-park,c-ring-spin"
messages=2000000
while getopts r:c:m: o; do
	case $o in
	r) rounds=$OPTARG ;;
	c) cases=$OPTARG ;;
	m) messages=$OPTARG ;;
	*) echo "usage: $0 [-r ROUNDS] [-c CASES] [-m MESSAGES] OLD [NEW]" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-r ROUNDS] [-c CASES] [-m MESSAGES] OLD [NEW]" >&2; exit 2; }
root=$(git rev-parse --show-toplevel)
out=$(mktemp -d /tmp/ab.XXXXXX)
build() { # ref dest
	if [ "$1" = "." ]; then
		(cd "$root" && go build -o "$2" ./bench/cmd/shmbench)
		return
	fi
	local wt="$out/src-$(basename "$2")"
	git -C "$root" worktree add -q --detach "$wt" "$1"
	(cd "$wt" && go build -o "$2" ./bench/cmd/shmbench)
	git -C "$root" worktree remove --force "$wt"
}
old=$1 new=${2:-.}
build "$old" "$out/old"
build "$new" "$out/new"
echo "old=$old new=$new rounds=$rounds raw=$out" >&2
for r in $(seq 1 "$rounds"); do
	order="old new"
	[ $((r % 2)) -eq 0 ] && order="new old"
	for side in $order; do
		"$out/$side" --cases "$cases" --rounds 1 --messages "$messages" --round-trips 20000 --sizes 64 --json >"$out/$side-$r.json"
	done
done
go run "$root/scripts/abcompare" "$out" "$rounds" "$old" "$new"
