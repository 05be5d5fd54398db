package types

import (
	"testing"

	"github.com/highway-compute/highway/poc"
)

// TestDevTargetsEveryClass: on the dev chain one GPU of every listed class
// gets an epoch target from its work window (CreateLease refuses a lease
// without one), so a dev lease on any card can run. The recalibration of
// 2026-12-05 put an L4 at D = 3, under the dev MinDifficulty of 4 it had.
func TestDevTargetsEveryClass(t *testing.T) {
	p := DevParams()
	for _, c := range p.ClassRates {
		if _, err := poc.EpochTargetMilli(p.Poc.ToPoC(), c.MilliH100, p.ProofWorkSeconds); err != nil {
			t.Errorf("one %s, %d s at DevParams: %v", c.Class, p.ProofWorkSeconds, err)
		}
	}
}
