package types

import (
	errorsmod "cosmossdk.io/errors"
	sdk "github.com/cosmos/cosmos-sdk/types"

	"github.com/highway-compute/highway/poc"
)

var (
	_ sdk.Msg = (*MsgCreateLease)(nil)
	_ sdk.Msg = (*MsgSubmitProof)(nil)
	_ sdk.Msg = (*MsgExtendLease)(nil)
	_ sdk.Msg = (*MsgCloseLease)(nil)
	_ sdk.Msg = (*MsgOpenDispute)(nil)
	_ sdk.Msg = (*MsgResolveDispute)(nil)
	_ sdk.Msg = (*MsgUpdateParams)(nil)
)

// ValidateBasic checks what needs no state; the msg server re-checks
// everything against state.
func (m *MsgCreateLease) ValidateBasic() error {
	if _, err := sdk.AccAddressFromBech32(m.Buyer); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "buyer: %v", err)
	}
	if m.Quote.ExtendsLease != 0 {
		return errorsmod.Wrapf(ErrInvalidQuote, "an extension quote (for lease %d) cannot create a lease", m.Quote.ExtendsLease)
	}
	return m.Quote.ValidateBasic()
}

// ValidateBasic checks what needs no state; the msg server checks the
// quote against the lease.
func (m *MsgExtendLease) ValidateBasic() error {
	if _, err := sdk.AccAddressFromBech32(m.Buyer); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "buyer: %v", err)
	}
	if m.LeaseId == 0 {
		return errorsmod.Wrap(ErrLeaseNotFound, "lease_id is required")
	}
	if m.Quote.ExtendsLease != m.LeaseId {
		return errorsmod.Wrapf(ErrInvalidQuote, "the quote extends lease %d, not lease %d", m.Quote.ExtendsLease, m.LeaseId)
	}
	return m.Quote.ValidateBasic()
}

// ValidateBasic checks a quote's terms without state.
func (q Quote) ValidateBasic() error {
	if _, err := sdk.AccAddressFromBech32(q.Provider); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "provider: %v", err)
	}
	if _, err := sdk.AccAddressFromBech32(q.Buyer); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "quote buyer: %v", err)
	}
	switch {
	case q.Provider == q.Buyer:
		return errorsmod.Wrap(ErrInvalidQuote, "provider and buyer must differ")
	case q.GpuClass == "":
		return errorsmod.Wrap(ErrInvalidQuote, "gpu_class is required")
	case q.Gpus == 0 || q.Gpus > MaxGPUsPerLease:
		return errorsmod.Wrapf(ErrInvalidQuote, "gpus must be 1..%d", MaxGPUsPerLease)
	case q.PricePerEpoch.IsNil() || !q.PricePerEpoch.IsPositive():
		return errorsmod.Wrap(ErrInvalidAmount, "price_per_epoch must be positive")
	case q.Epochs == 0:
		return errorsmod.Wrap(ErrInvalidQuote, "epochs must be positive")
	case q.ExpiresAt <= 0:
		return errorsmod.Wrap(ErrInvalidQuote, "expires_at is required")
	case len(q.Signature) == 0:
		return errorsmod.Wrap(ErrQuoteSignature, "signature is required")
	}
	if _, err := q.PricePerEpoch.SafeMul(sdkIntFromUint64(q.Epochs)); err != nil {
		return errorsmod.Wrap(ErrInvalidAmount, "price × epochs overflows")
	}
	return nil
}

// ValidateBasic implements sdk.HasValidateBasic.
func (m *MsgSubmitProof) ValidateBasic() error {
	if _, err := sdk.AccAddressFromBech32(m.Provider); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "provider: %v", err)
	}
	// Only a size no params could ever allow is refused here, before the
	// lease is known: anything smaller from the lease's provider is that
	// epoch's one attempt, and settles it (as missed if it is malformed).
	if len(m.Proof) > MaxProofBytes {
		return errorsmod.Wrapf(ErrInvalidProof, "%d bytes > %d, more than any params allow", len(m.Proof), MaxProofBytes)
	}
	return nil
}

// MaxProofBytes is the largest proof encoding any valid params allow:
// poc.MaxEncodedSize at poc.MaxProofNoncesCap nonces.
var MaxProofBytes = poc.MaxEncodedSize(poc.Params{MaxProofNonces: poc.MaxProofNoncesCap})

// ValidateBasic implements sdk.HasValidateBasic.
func (m *MsgCloseLease) ValidateBasic() error {
	if _, err := sdk.AccAddressFromBech32(m.Sender); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "sender: %v", err)
	}
	return nil
}

// ValidateBasic implements sdk.HasValidateBasic.
func (m *MsgOpenDispute) ValidateBasic() error {
	if _, err := sdk.AccAddressFromBech32(m.Buyer); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "buyer: %v", err)
	}
	if len(m.Reason) > MaxReasonLen {
		return errorsmod.Wrapf(ErrInvalidReason, "at most %d bytes", MaxReasonLen)
	}
	return nil
}

// ValidateBasic implements sdk.HasValidateBasic.
func (m *MsgResolveDispute) ValidateBasic() error {
	if _, err := sdk.AccAddressFromBech32(m.Arbiter); err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "arbiter: %v", err)
	}
	if m.BuyerBps > basisPoints {
		return errorsmod.Wrapf(ErrInvalidSplit, "got %d", m.BuyerBps)
	}
	if len(m.Resolution) > MaxReasonLen {
		return errorsmod.Wrapf(ErrInvalidReason, "at most %d bytes", MaxReasonLen)
	}
	return nil
}

// ValidateBasic implements sdk.HasValidateBasic.
func (m *MsgUpdateParams) ValidateBasic() error {
	if _, err := sdk.AccAddressFromBech32(m.Authority); err != nil {
		return errorsmod.Wrapf(ErrInvalidAuthority, "%v", err)
	}
	return m.Params.Validate()
}
