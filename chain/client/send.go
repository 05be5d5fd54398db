package client

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	errorsmod "cosmossdk.io/errors"
	"cosmossdk.io/math"

	sdk "github.com/cosmos/cosmos-sdk/types"
	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"
	txtypes "github.com/cosmos/cosmos-sdk/types/tx"
	"github.com/cosmos/cosmos-sdk/types/tx/signing"
	authsigning "github.com/cosmos/cosmos-sdk/x/auth/signing"
)

// expectedSeq finds the sequence in the SDK's "account sequence mismatch,
// expected N, got M" error.
var expectedSeq = regexp.MustCompile(`expected (\d+), got \d+`)

// maxSequenceRetries bounds resubmission after "account sequence mismatch",
// which happens when another process signs for the same account.
const maxSequenceRetries = 3

// maxSequenceSteps bounds one broadcast's sequence retries however they
// progress: far more signers than any deployment runs on one account.
const maxSequenceSteps = 64

// Send simulates, signs, broadcasts and waits for msgs to commit. A
// transaction that fails in CheckTx or DeliverTx returns the chain's
// registered error (errors.Is works against escrowtypes.ErrX), and the
// returned TxResult still names the hash when it was broadcast.
//
// The account is held only until the node accepted the transaction into
// its mempool (the sequence is then spoken for), not while it waits for a
// block: a provider's agent proving several leases at once sends their
// proofs side by side, and each must land within its own proof window.
//
// Every attempt is signed with a fresh memo nonce, so no two attempts
// share a hash. Without it a resend after a delivery failure could be
// byte-identical to the failed transaction: the node accepted it again
// (a failed transaction leaves the mempool cache), the wait then read
// the old failure from the tx index, and the next resend at a higher
// sequence applied the same transfer twice (docs/chain.md). Every send
// ends in a known outcome, or an error that says "outcome unknown"
// (settle.go).
func (c *Client) Send(ctx context.Context, s Signer, msgs ...sdk.Msg) (*TxResult, error) {
	addr := s.Address()
	var failed []*TxResult // this send's attempts that did not apply
	for attempt := 0; ; attempt++ {
		sent, err := c.broadcast(ctx, s, msgs, failed)
		if errors.Is(err, errEarlierApplied) {
			return sent, nil
		}
		var res *TxResult
		switch {
		case errors.Is(err, errBroadcastLost) && ctx.Err() == nil:
			// The node may or may not have taken it: find out.
			c.forget(addr)
			res, err = c.settle(ctx, addr, sent)
		case err != nil:
			// This attempt never reached a node as far as we know; an
			// earlier one may still land.
			if sent == nil {
				sent = &TxResult{}
			}
			return c.conclude(ctx, addr, failed, sent, err)
		default:
			res, err = c.WaitTx(ctx, sent.Hash)
			if err != nil && res.Height == 0 && ctx.Err() == nil {
				// The wait ran out, not the caller's patience: settle what
				// happened rather than leave the caller guessing whether a
				// retry would pay twice.
				res, err = c.settle(ctx, addr, sent)
			}
		}
		// Another transaction took the sequence first: two processes
		// signing for one account, or a node that put our later sequence
		// ahead of our earlier one in its mempool (CometBFT adds checked
		// transactions to the mempool out of CheckTx order under load).
		// The node rejected ours at delivery: it changed nothing (not even
		// the fee). Reload and resend.
		wrongSeq := errors.Is(err, sdkerrors.ErrWrongSequence)
		// Gas was simulated against the state before the block; a
		// transaction ahead of ours in it can make ours cost more. The
		// failed one changed nothing but its fee: simulate again on the
		// new state and resend, once.
		outOfGas := errors.Is(err, sdkerrors.ErrOutOfGas) && attempt == 0
		// Past its timeout height and not included (or refused for it at
		// delivery): it never will be. Send it again.
		expired := errors.Is(err, sdkerrors.ErrTxTimeoutHeight)
		sent.failedAt = uint64(res.Height)
		sent.dead = expired
		if !wrongSeq && !outOfGas && !expired {
			if err != nil && res.Height > 0 {
				// Refused at delivery without spending its sequence (a
				// fee it could not pay), it could still be included up
				// to its timeout height: conclude checks it too.
				return c.conclude(ctx, addr, append(failed, sent), res, err)
			}
			return c.conclude(ctx, addr, failed, res, err)
		}
		failed = append(failed, sent)
		if attempt >= maxSequenceRetries {
			// Giving up: first make sure no attempt can still apply, or
			// the caller's retry could pay twice.
			return c.conclude(ctx, addr, failed, res, err)
		}
		if wrongSeq || expired {
			c.forget(addr)
		}
		c.resends.Add(1)
	}
}

// forget makes the next transaction for addr reload its account.
func (c *Client) forget(addr sdk.AccAddress) {
	acc := c.account(addr)
	acc.mu.Lock()
	acc.loaded = false
	acc.mu.Unlock()
}

// Resends counts transactions this client signed again after the chain
// rejected an earlier attempt at delivery: how often concurrent signers
// or mempool reordering cost a block.
func (c *Client) Resends() uint64 { return c.resends.Load() }

// broadcast signs and broadcasts under the account's lock, retrying when
// another process used the account's sequence. failed are the same send's
// earlier attempts: see clearOf.
func (c *Client) broadcast(ctx context.Context, s Signer, msgs []sdk.Msg, failed []*TxResult) (*TxResult, error) {
	acc := c.account(s.Address())
	acc.mu.Lock()
	defer acc.mu.Unlock()
	var lastErr error
	// Each "expected N" above the sequence tried means another signer's
	// transaction took it: that is progress, and with k signers racing one
	// can lose k-1 times in a row. Only a mismatch that names no sequence
	// (or an absurd run of them) counts against the bound.
	for stalls, steps := 0, 0; stalls <= maxSequenceRetries && steps < maxSequenceSteps; steps++ {
		if !acc.loaded {
			if err := c.loadAccount(ctx, s.Address(), acc); err != nil {
				return nil, err
			}
		}
		if r, err := c.clearOf(ctx, s.Address(), acc.sequence, failed); err != nil || r != nil {
			if r != nil {
				return r, errEarlierApplied
			}
			return nil, err
		}
		tried := acc.sequence
		res, err := c.sendOnce(ctx, s, acc, msgs)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if !errors.Is(err, sdkerrors.ErrWrongSequence) {
			return res, err
		}
		// The node says which sequence it expects (counting its mempool,
		// which a query of committed state would not); without that,
		// reload and let a block pass.
		if m := expectedSeq.FindStringSubmatch(err.Error()); m != nil {
			if n, perr := strconv.ParseUint(m[1], 10, 64); perr == nil {
				if n <= tried {
					stalls++
				}
				acc.sequence = n
				continue
			}
		}
		stalls++
		acc.loaded = false
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil, fmt.Errorf("chain client: sequence kept changing: %w", lastErr)
}

func (c *Client) account(addr sdk.AccAddress) *account {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.accounts[addr.String()]
	if !ok {
		a = &account{}
		c.accounts[addr.String()] = a
	}
	return a
}

func (c *Client) loadAccount(ctx context.Context, addr sdk.AccAddress, acc *account) error {
	number, seq, _, err := c.committedAccount(ctx, addr)
	if err != nil {
		return err
	}
	acc.number, acc.sequence, acc.loaded = number, seq, true
	return nil
}

// memoNonce makes each signed attempt's bytes, and so its hash, unique.
func memoNonce() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("chain client: memo nonce: %w", err)
	}
	return "hw:" + hex.EncodeToString(b[:]), nil
}

func (c *Client) sendOnce(ctx context.Context, s Signer, acc *account, msgs []sdk.Msg) (*TxResult, error) {
	// Simulate with an empty signature to learn the gas.
	b := c.enc.TxConfig.NewTxBuilder()
	if err := b.SetMsgs(msgs...); err != nil {
		return nil, err
	}
	memo, err := memoNonce()
	if err != nil {
		return nil, err
	}
	b.SetMemo(memo)
	h, err := c.latestHeight(ctx)
	if err != nil {
		return nil, err
	}
	timeoutHeight := uint64(h) + c.cfg.TimeoutBlocks
	b.SetTimeoutHeight(timeoutHeight)
	if err := b.SetSignatures(signing.SignatureV2{
		PubKey: s.PubKey(), Data: &signing.SingleSignatureData{SignMode: signing.SignMode_SIGN_MODE_DIRECT}, Sequence: acc.sequence,
	}); err != nil {
		return nil, err
	}
	simBytes, err := c.enc.TxConfig.TxEncoder()(b.GetTx())
	if err != nil {
		return nil, err
	}
	sim, err := c.Tx.Simulate(ctx, &txtypes.SimulateRequest{TxBytes: simBytes})
	if err != nil {
		return nil, abciErrorFromStatus(err)
	}
	gas := sim.GasInfo.GasUsed * c.cfg.GasAdjustmentPct / 100
	b.SetGasLimit(gas)
	if !c.gasPrice.IsZero() {
		fees := make(sdk.Coins, 0, len(c.gasPrice))
		for _, p := range c.gasPrice {
			fees = append(fees, sdk.NewCoin(p.Denom, p.Amount.MulInt(math.NewIntFromUint64(gas)).Ceil().RoundInt()))
		}
		b.SetFeeAmount(sdk.NewCoins(fees...))
	}

	signerData := authsigning.SignerData{
		Address: s.Address().String(), ChainID: c.cfg.ChainID, AccountNumber: acc.number,
		Sequence: acc.sequence, PubKey: s.PubKey(),
	}
	if err := b.SetSignatures(signing.SignatureV2{
		PubKey: s.PubKey(), Data: &signing.SingleSignatureData{SignMode: signing.SignMode_SIGN_MODE_DIRECT}, Sequence: acc.sequence,
	}); err != nil {
		return nil, err
	}
	signBytes, err := authsigning.GetSignBytesAdapter(ctx, c.enc.TxConfig.SignModeHandler(), signing.SignMode_SIGN_MODE_DIRECT, signerData, b.GetTx())
	if err != nil {
		return nil, err
	}
	sig, err := s.Sign(signBytes)
	if err != nil {
		return nil, fmt.Errorf("chain client: sign: %w", err)
	}
	if err := b.SetSignatures(signing.SignatureV2{
		PubKey: s.PubKey(), Data: &signing.SingleSignatureData{SignMode: signing.SignMode_SIGN_MODE_DIRECT, Signature: sig}, Sequence: acc.sequence,
	}); err != nil {
		return nil, err
	}
	txBytes, err := c.enc.TxConfig.TxEncoder()(b.GetTx())
	if err != nil {
		return nil, err
	}
	sent := &TxResult{Hash: fmt.Sprintf("%X", sha256.Sum256(txBytes)), sequence: acc.sequence, timeoutHeight: timeoutHeight, fromHeight: uint64(h)}
	br, err := c.Tx.BroadcastTx(ctx, &txtypes.BroadcastTxRequest{TxBytes: txBytes, Mode: txtypes.BroadcastMode_BROADCAST_MODE_SYNC})
	if err != nil {
		// The node may have taken it before the answer was lost.
		return sent, fmt.Errorf("chain client: broadcast of %s: %w: %w", sent.Hash, errBroadcastLost, err)
	}
	r := br.TxResponse
	if r.Code != 0 {
		// The memo nonce makes every attempt's bytes new, so "already in
		// the mempool cache" cannot be ours: any refusal is final here.
		return &TxResult{Hash: sent.Hash}, errorsmod.ABCIError(r.Codespace, r.Code, r.RawLog)
	}
	acc.sequence++ // accepted into the mempool: the next tx uses the next sequence
	return sent, nil
}
