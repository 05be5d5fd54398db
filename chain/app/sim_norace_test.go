//go:build !race

package app_test

// 20 seeds × 500 blocks normally; the race build runs fewer (see sim_race_test.go).
const (
	simSeeds  = 20
	simBlocks = 500
)
