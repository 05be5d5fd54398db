//go:build race

package app_test

// Under -race the simulator is ~10× slower: fewer seeds keep CI in
// budget; the full 20 × 500 runs in the race-free build.
const (
	simSeeds  = 3
	simBlocks = 200
)
