package types

import (
	"crypto/sha256"
	"encoding/binary"

	errorsmod "cosmossdk.io/errors"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
)

// quoteDomain separates quote signatures from every other signature the
// provider's key makes (transactions sign a different structure).
const quoteDomain = "highway/quote/v1"

// QuoteSignBytes is what a provider signs: a length-prefixed encoding of
// the chain id and every term, so no field can be moved into another and
// no quote is valid on another chain. The signature and public key are
// not part of it. extends_lease is signed when set (see Quote).
func QuoteSignBytes(chainID string, q Quote) []byte {
	var b []byte
	str := func(s string) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	str(quoteDomain)
	str(chainID)
	str(q.Provider)
	str(q.Buyer)
	str(q.GpuClass)
	b = binary.BigEndian.AppendUint32(b, q.Gpus)
	str(q.PricePerEpoch.String())
	b = binary.BigEndian.AppendUint64(b, q.Epochs)
	b = binary.BigEndian.AppendUint64(b, uint64(q.ExpiresAt))
	b = binary.BigEndian.AppendUint64(b, q.Nonce)
	if q.ExtendsLease != 0 {
		// Appended only when set: a creation quote signs the same bytes as
		// before the field existed, and an extension quote's bytes can
		// never equal a creation quote's (they are longer).
		str("extends_lease")
		b = binary.BigEndian.AppendUint64(b, q.ExtendsLease)
	}
	return b
}

// SignQuote signs q with the provider's secp256k1 key, setting PubKey and
// Signature. The agent uses it; tests too.
func SignQuote(chainID string, q Quote, key *secp256k1.PrivKey) (Quote, error) {
	q.PubKey = key.PubKey().Bytes()
	q.Signature = nil
	sig, err := key.Sign(QuoteSignBytes(chainID, q))
	if err != nil {
		return q, err
	}
	q.Signature = sig
	return q, nil
}

// VerifyQuoteSignature checks that q is signed by the key of q.Provider.
func VerifyQuoteSignature(chainID string, q Quote) error {
	if len(q.PubKey) != secp256k1.PubKeySize {
		return errorsmod.Wrapf(ErrQuoteSignature, "public key must be %d bytes", secp256k1.PubKeySize)
	}
	pk := &secp256k1.PubKey{Key: q.PubKey}
	provider, err := sdk.AccAddressFromBech32(q.Provider)
	if err != nil {
		return errorsmod.Wrapf(ErrInvalidAddress, "provider: %v", err)
	}
	if !provider.Equals(sdk.AccAddress(pk.Address())) {
		return errorsmod.Wrap(ErrQuoteSignature, "public key does not belong to the provider")
	}
	if !pk.VerifySignature(QuoteSignBytes(chainID, q), q.Signature) {
		return errorsmod.Wrap(ErrQuoteSignature, "bad signature")
	}
	return nil
}

// QuoteHash identifies a quote in logs and events.
func QuoteHash(chainID string, q Quote) [32]byte {
	return sha256.Sum256(QuoteSignBytes(chainID, q))
}
