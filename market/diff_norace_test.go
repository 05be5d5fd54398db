//go:build !race

package market

// diffCommands is the length of the differential run. One million in a
// normal build (the bar, ~20 s on 2 cores); the race detector
// slows the engine ~10x, so diff_race_test.go sets 100 000 there to keep
// `go test -race ./market/` under ~90 s.
const diffCommands = 1_000_000

// propertyRuns is how many random runs TestNoDoubleRent checks (the
// check after every command is O(orders × machines); -race slows it ~10x).
const propertyRuns = 8
