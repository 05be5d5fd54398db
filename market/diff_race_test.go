//go:build race

package market

// diffCommands under -race: see diff_norace_test.go.
const diffCommands = 100_000

// propertyRuns is how many random runs TestNoDoubleRent checks (the
// check after every command is O(orders × machines); -race slows it ~10x).
const propertyRuns = 2
