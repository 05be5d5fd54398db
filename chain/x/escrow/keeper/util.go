package keeper

import "cosmossdk.io/math"

func sdkZeroIfNil(t *Totals) math.Int {
	if t == nil {
		return math.ZeroInt()
	}
	return t.Remaining.Add(t.Pending).Add(t.Frozen)
}
