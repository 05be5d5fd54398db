// Package chainlink connects the provider agent to highwayd with the
// provider's own key: it follows the chain for the provider's leases and
// yields an epoch's proof job when its window opens (agent.ProofSource),
// submits finished proofs (agent.ProofSubmitter), and signs price quotes
// (agent.QuoteSigner). The key never leaves the agent's machine.
//
// It is the only agent package that imports the Cosmos SDK, so the rest of
// the agent stays small to build and test.
package chainlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"cosmossdk.io/math"
	"github.com/cosmos/cosmos-sdk/crypto/hd"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/protocol"
	"github.com/highway-compute/highway/provider-agent/prover"
)

// KeyFromMnemonic derives the provider's secp256k1 key on the Cosmos path
// m/44'/118'/0'/0/0, as `highwayd keys add --recover` would.
func KeyFromMnemonic(mnemonic string) (*secp256k1.PrivKey, error) {
	derived, err := hd.Secp256k1.Derive()(mnemonic, "", hd.CreateHDPath(118, 0, 0).String())
	if err != nil {
		return nil, fmt.Errorf("provider key: %w", err)
	}
	priv, ok := hd.Secp256k1.Generate()(derived).(*secp256k1.PrivKey)
	if !ok {
		return nil, errors.New("provider key: not secp256k1")
	}
	return priv, nil
}

// Follower watches the provider's leases and sends a proof job for each
// active lease's current epoch once, when its seed exists.
type Follower struct {
	Client   *client.Client
	Provider sdk.AccAddress
	Log      *slog.Logger
	// WorkMargin scales the lease's proof work window into the prover's
	// deadline (default 125 %: a little longer than the window, so an
	// exactly-calibrated GPU clears its target).
	WorkMarginPct uint64
}

// Jobs implements agent.ProofSource.
func (f *Follower) Jobs(ctx context.Context) <-chan prover.Job {
	out := make(chan prover.Job)
	go func() {
		defer close(out)
		log := f.Log
		if log == nil {
			log = slog.Default()
		}
		from, _, err := f.Client.LatestHeight(ctx)
		for err != nil {
			log.Warn("chain not reachable; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
			from, _, err = f.Client.LatestHeight(ctx)
		}
		emitted := map[[2]uint64]bool{}
		err = f.Client.Follow(ctx, from, client.FollowOptions{}, func(b client.Block) error {
			jobs, err := f.dueJobs(ctx, b.Height, emitted)
			if err != nil {
				log.Warn("listing leases", "err", err)
				return nil // the next block retries
			}
			for _, j := range jobs {
				select {
				case out <- j:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		if err != nil && ctx.Err() == nil {
			log.Error("chain follower stopped", "err", err)
		}
	}()
	return out
}

// dueJobs lists the jobs whose windows are open at height h and not yet
// emitted.
func (f *Follower) dueJobs(ctx context.Context, h int64, emitted map[[2]uint64]bool) ([]prover.Job, error) {
	var jobs []prover.Job
	var key []byte
	for {
		res, err := f.Client.Escrow.LeasesByProvider(ctx, &escrowtypes.QueryLeasesByProviderRequest{
			Provider: f.Provider.String(), Pagination: &query.PageRequest{Key: key, Limit: 200},
		})
		if err != nil {
			return nil, err
		}
		for _, l := range res.Leases {
			if l.Status != escrowtypes.LEASE_STATUS_ACTIVE || h <= l.StartHeight {
				continue
			}
			e := uint64(h-l.StartHeight-1) / l.EpochBlocks
			if e >= l.EpochsTotal || emitted[[2]uint64{l.Id, e}] {
				continue
			}
			task, err := f.Client.Escrow.ProofTask(ctx, &escrowtypes.QueryProofTaskRequest{LeaseId: l.Id, Epoch: e})
			if err != nil {
				continue // the epoch's seed block is not committed yet
			}
			emitted[[2]uint64{l.Id, e}] = true
			var seed poc.Seed
			copy(seed[:], task.Seed)
			margin := f.WorkMarginPct
			if margin == 0 {
				margin = 125
			}
			work := time.Duration(l.ProofWorkSeconds*margin/100) * time.Second
			if work == 0 {
				work = time.Second
			}
			jobs = append(jobs, prover.Job{
				LeaseID: strconv.FormatUint(l.Id, 10), Epoch: e, Seed: seed,
				Target:   poc.Target{Difficulty: task.Difficulty, Required: task.Required},
				Params:   task.Poc.ToPoC(),
				Deadline: time.Now().Add(work), QuoteNonce: l.QuoteNonce,
			})
		}
		if res.Pagination == nil || len(res.Pagination.NextKey) == 0 {
			return jobs, nil
		}
		key = res.Pagination.NextKey
	}
}

// Submitter sends MsgSubmitProof signed by the provider.
type Submitter struct {
	Client *client.Client
	Key    *secp256k1.PrivKey
}

// Submit implements agent.ProofSubmitter: cleared is true when the chain
// accepted the proof.
func (s *Submitter) Submit(ctx context.Context, job prover.Job, res prover.Result) (bool, error) {
	id, err := strconv.ParseUint(job.LeaseID, 10, 64)
	if err != nil {
		return false, fmt.Errorf("lease id %q: %w", job.LeaseID, err)
	}
	signer := client.KeySigner{Key: s.Key}
	_, err = s.Client.Send(ctx, signer, &escrowtypes.MsgSubmitProof{
		Provider: signer.Address().String(), LeaseId: id, Epoch: job.Epoch, Proof: res.Proof,
	})
	if err != nil {
		return false, err
	}
	return true, nil
}

// QuoteSigner signs quotes with the provider's chain key.
type QuoteSigner struct {
	Key *secp256k1.PrivKey
}

// SignQuote implements agent.QuoteSigner.
func (q QuoteSigner) SignQuote(_ context.Context, chainID string, pq protocol.Quote) (protocol.Quote, error) {
	price, ok := math.NewIntFromString(pq.PricePerEpoch)
	if !ok {
		return pq, fmt.Errorf("quote price %q is not an integer", pq.PricePerEpoch)
	}
	signed, err := escrowtypes.SignQuote(chainID, escrowtypes.Quote{
		Provider: pq.Provider, Buyer: pq.Buyer, GpuClass: pq.GPUClass, Gpus: pq.GPUs, PricePerEpoch: price,
		Epochs: pq.Epochs, ExpiresAt: pq.ExpiresAt, Nonce: pq.Nonce,
	}, q.Key)
	if err != nil {
		return pq, err
	}
	if sdk.AccAddress(q.Key.PubKey().Address()).String() != pq.Provider {
		return pq, fmt.Errorf("quote names provider %s, but this agent holds the key of %s", pq.Provider, sdk.AccAddress(q.Key.PubKey().Address()))
	}
	pq.PubKey, pq.Signature = signed.PubKey, signed.Signature
	return pq, nil
}
