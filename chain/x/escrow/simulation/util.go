package simulation

import "cosmossdk.io/collections"

func joinEpoch(id, e uint64) collections.Pair[uint64, uint64] { return collections.Join(id, e) }
