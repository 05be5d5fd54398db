#!/bin/sh
# ab-market.sh REV [RUNS]: this tree's matching engine against market/ at
# REV, in one process, on the same op stream (market/ab_test.go). On a
# shared VM whose speed moves by ±20 % from one minute to the next, two
# binaries run one after the other differ by more than most changes do;
# batches of the two engines alternated within one run see the same
# host, and an A/A run (REV = HEAD, tree clean) stays within ±1.5 %.
set -eu
rev=${1:?usage: scripts/ab-market.sh REV [RUNS]}
runs=${2:-3}
cd "$(dirname "$0")/.."
dir=market/abold
trap 'rm -rf "$dir"' EXIT
rm -rf "$dir" && mkdir -p "$dir"
# The package as it was at REV, renamed: its own types, so both engines
# live side by side.
for f in $(git ls-tree --name-only "$rev" market/ | grep '\.go$' | grep -v '_test\.go$'); do
	git show "$rev:$f" | sed '0,/^package market$/s//package abold/' > "$dir/$(basename "$f")"
done
go test -c -tags abtest -o "$dir/ab.test" ./market
i=0
while [ "$i" -lt "$runs" ]; do
	(cd market && "abold/ab.test" -test.run '^$' -test.bench '^BenchmarkAB$' -test.benchtime 1x) | grep -E '^(BenchmarkAB|    |FAIL)'
	i=$((i + 1))
done
