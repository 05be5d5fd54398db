// Package types holds the escrow module's messages, state types, params,
// errors and codec registrations.
package types

import "cosmossdk.io/collections"

const (
	// ModuleName is the module's name, store key and module account.
	ModuleName = "escrow"
	// StoreKey is the KV store key.
	StoreKey = ModuleName
	// GovModuleName names the default authority (x/gov's module account).
	GovModuleName = "gov"
)

// Store prefixes, one per collection. Never reuse a number.
var (
	ParamsKey           = collections.NewPrefix(0)
	LeaseSeqKey         = collections.NewPrefix(1)
	LeasesKey           = collections.NewPrefix(2)
	LeasesByBuyerKey    = collections.NewPrefix(3)
	LeasesByProviderKey = collections.NewPrefix(4)
	EpochsKey           = collections.NewPrefix(5)
	DeadlineDueKey      = collections.NewPrefix(6)
	PayoutDueKey        = collections.NewPrefix(7)
	UsedQuotesKey       = collections.NewPrefix(8)
	QuoteExpiryKey      = collections.NewPrefix(9)
	BlockHashesKey      = collections.NewPrefix(10)
	BlockTimesKey       = collections.NewPrefix(11)
	PendingProofsKey    = collections.NewPrefix(12)
	JudgeDueKey         = collections.NewPrefix(13)
	JudgingKey          = collections.NewPrefix(14)
)
