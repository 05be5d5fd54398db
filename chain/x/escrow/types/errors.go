package types

import errorsmod "cosmossdk.io/errors"

// Registered errors: every rejection names one, so clients can switch on
// (codespace, code). Codes are part of the chain's API: never renumber.
var (
	ErrLeaseNotFound     = errorsmod.Register(ModuleName, 2, "lease not found")
	ErrUnauthorized      = errorsmod.Register(ModuleName, 3, "signer is not allowed to do this")
	ErrInvalidQuote      = errorsmod.Register(ModuleName, 4, "invalid quote")
	ErrQuoteExpired      = errorsmod.Register(ModuleName, 5, "quote expired")
	ErrQuoteSignature    = errorsmod.Register(ModuleName, 6, "quote not signed by its provider")
	ErrQuoteReused       = errorsmod.Register(ModuleName, 7, "quote already used")
	ErrInvalidAmount     = errorsmod.Register(ModuleName, 8, "invalid amount")
	ErrLeaseNotActive    = errorsmod.Register(ModuleName, 9, "lease is not active")
	ErrWrongEpoch        = errorsmod.Register(ModuleName, 10, "no such epoch in this lease")
	ErrProofWindow       = errorsmod.Register(ModuleName, 11, "outside the epoch's proof window")
	ErrDuplicateProof    = errorsmod.Register(ModuleName, 12, "the epoch already had its one proof")
	ErrInvalidProof      = errorsmod.Register(ModuleName, 13, "proof of compute rejected")
	ErrDisputeWindow     = errorsmod.Register(ModuleName, 14, "nothing left to dispute")
	ErrNotArbiter        = errorsmod.Register(ModuleName, 15, "only the arbiter can resolve disputes")
	ErrInvalidSplit      = errorsmod.Register(ModuleName, 16, "split must be 0..10000 basis points")
	ErrInvalidParams     = errorsmod.Register(ModuleName, 17, "invalid params")
	ErrUnknownClass      = errorsmod.Register(ModuleName, 18, "unknown GPU class")
	ErrInvalidAuthority  = errorsmod.Register(ModuleName, 19, "invalid authority")
	ErrNotDisputed       = errorsmod.Register(ModuleName, 20, "lease is not disputed")
	ErrSeedUnavailable   = errorsmod.Register(ModuleName, 21, "epoch seed not available")
	ErrInvalidAddress    = errorsmod.Register(ModuleName, 22, "invalid address")
	ErrInsufficientFunds = errorsmod.Register(ModuleName, 23, "insufficient funds for escrow")
	ErrInvalidReason     = errorsmod.Register(ModuleName, 24, "reason or note too long")
	ErrExtension         = errorsmod.Register(ModuleName, 25, "the lease cannot be extended")
)
