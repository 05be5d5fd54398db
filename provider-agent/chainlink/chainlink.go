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

	"github.com/cosmos/cosmos-sdk/crypto/hd"
	"github.com/cosmos/cosmos-sdk/crypto/keys/secp256k1"
	sdk "github.com/cosmos/cosmos-sdk/types"
	"github.com/cosmos/cosmos-sdk/types/query"

	"github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/protocol"
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
}

func (f *Follower) log() *slog.Logger {
	if f.Log == nil {
		return slog.Default()
	}
	return f.Log
}

// Jobs implements agent.ProofSource.
func (f *Follower) Jobs(ctx context.Context) <-chan prover.Job {
	out := make(chan prover.Job)
	go func() {
		defer close(out)
		log := f.log()
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
			jobs, err := f.dueJobs(ctx, b, emitted)
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

// dueJobs lists the jobs whose windows are open at block b and not yet
// emitted.
func (f *Follower) dueJobs(ctx context.Context, b client.Block, emitted map[[2]uint64]bool) ([]prover.Job, error) {
	h := b.Height
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
			if l.Status != escrowtypes.LEASE_STATUS_ACTIVE || h <= l.StartHeight || l.EpochBlocks == 0 {
				continue
			}
			e := uint64(h-l.StartHeight-1) / l.EpochBlocks
			if e > 0 {
				delete(emitted, [2]uint64{l.Id, e - 1}) // its window is past: forget it
			}
			if e >= l.EpochsTotal || emitted[[2]uint64{l.Id, e}] {
				continue
			}
			task, err := f.Client.Escrow.ProofTask(ctx, &escrowtypes.QueryProofTaskRequest{LeaseId: l.Id, Epoch: e})
			if err != nil {
				continue // the epoch's seed block is not committed yet
			}
			emitted[[2]uint64{l.Id, e}] = true
			work := workTime(task, time.Now())
			if work <= 0 {
				// Seen too late (the follower caught up through old
				// blocks): the window is over; proving would only burn GPU
				// time the buyer is paying for.
				f.log().Warn("epoch's proof window passed before the agent saw it", "lease", l.Id, "epoch", e)
				continue
			}
			var seed poc.Seed
			copy(seed[:], task.Seed)
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

// workTime is how long to prove: the lease's work seconds, which the
// target is sized for, and not a moment past them: the chain's grace
// covers getting the proof into a block, not more proving. Normally the
// agent sees the seed as its block commits, before the window's opening
// block exists (WindowOpenMs 0), and proves the whole work window. One
// that learns of the epoch later (it lagged, restarted, or is catching up
// through old blocks) proves only what is left of the window by the clock
// (block times are the validators' clocks; keep this machine's in sync),
// so its proof still lands in time, or is not sent if it falls short.
func workTime(task *escrowtypes.QueryProofTaskResponse, now time.Time) time.Duration {
	work := time.Duration(task.WorkSeconds) * time.Second
	if task.WindowOpenMs > 0 {
		if late := now.Sub(time.UnixMilli(task.WindowOpenMs)); late > 0 {
			work -= late
		}
	}
	return max(work, 0)
}

// Submitter sends MsgSubmitProof signed by the provider.
type Submitter struct {
	Client *client.Client
	Key    *secp256k1.PrivKey
	// Poll is how often Verdict asks for the epoch's record (default 500 ms).
	Poll time.Duration
}

// Submit implements agent.ProofSubmitter: it returns once the proof
// landed, with its judging height, or with the chain's reason if the
// epoch was missed on arrival.
func (s *Submitter) Submit(ctx context.Context, job prover.Job, res prover.Result) (prover.Submitted, error) {
	id, err := strconv.ParseUint(job.LeaseID, 10, 64)
	if err != nil {
		return prover.Submitted{}, fmt.Errorf("lease id %q: %w", job.LeaseID, err)
	}
	signer := client.KeySigner{Key: s.Key}
	tx, err := s.Client.Send(ctx, signer, &escrowtypes.MsgSubmitProof{
		Provider: signer.Address().String(), LeaseId: id, Epoch: job.Epoch, Proof: res.Proof,
	})
	if err != nil {
		return prover.Submitted{}, err
	}
	if reason, missed := tx.Attr(evMissed, "reason"); missed {
		return prover.Submitted{Height: tx.Height, Missed: true, Reason: reason}, nil
	}
	judge, _ := tx.Attr(evSubmitted, "judge_height")
	h, err := strconv.ParseInt(judge, 10, 64)
	if err != nil {
		return prover.Submitted{}, fmt.Errorf("proof landed in tx %s without its judging height (%q)", tx.Hash, judge)
	}
	return prover.Submitted{Height: tx.Height, JudgeHeight: h}, nil
}

// Verdict implements agent.ProofSubmitter: it waits for the judging block
// and reads the epoch's record.
func (s *Submitter) Verdict(ctx context.Context, job prover.Job, sub prover.Submitted) (prover.Verdict, error) {
	if sub.Missed {
		return prover.Verdict{Reason: sub.Reason}, nil
	}
	id, err := strconv.ParseUint(job.LeaseID, 10, 64)
	if err != nil {
		return prover.Verdict{}, fmt.Errorf("lease id %q: %w", job.LeaseID, err)
	}
	poll := s.Poll
	if poll == 0 {
		poll = 500 * time.Millisecond
	}
	for {
		res, err := s.Client.Escrow.Epoch(ctx, &escrowtypes.QueryEpochRequest{LeaseId: id, Epoch: job.Epoch})
		if err == nil && res.Record != nil {
			return prover.Verdict{Cleared: res.Record.Status != escrowtypes.EPOCH_STATUS_MISSED, Reason: res.Record.Reason}, nil
		}
		if h, _, herr := s.Client.LatestHeight(ctx); herr == nil && h > sub.JudgeHeight+verdictSlackBlocks {
			if err == nil {
				err = errors.New("the epoch has no record")
			}
			return prover.Verdict{}, fmt.Errorf("no verdict %d blocks after the judging block %d: %w", h-sub.JudgeHeight, sub.JudgeHeight, err)
		}
		select {
		case <-ctx.Done():
			return prover.Verdict{}, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// Typed events the submitter reads, and how long past the judging block
// a verdict may take to show (a node serving queries a block behind).
const (
	evSubmitted        = "highway.escrow.v1.EventProofSubmitted"
	evMissed           = "highway.escrow.v1.EventEpochMissed"
	verdictSlackBlocks = 5
)

// QuoteSigner signs quotes with the provider's chain key.
type QuoteSigner struct {
	Key *secp256k1.PrivKey
}

// SignQuote implements agent.QuoteSigner.
func (q QuoteSigner) SignQuote(_ context.Context, chainID string, pq protocol.Quote) (protocol.Quote, error) {
	unsigned := pq
	unsigned.PubKey, unsigned.Signature = nil, nil
	cq, err := client.QuoteToChain(unsigned)
	if err != nil {
		return pq, err
	}
	signed, err := escrowtypes.SignQuote(chainID, cq, q.Key)
	if err != nil {
		return pq, err
	}
	if sdk.AccAddress(q.Key.PubKey().Address()).String() != pq.Provider {
		return pq, fmt.Errorf("quote names provider %s, but this agent holds the key of %s", pq.Provider, sdk.AccAddress(q.Key.PubKey().Address()))
	}
	pq.PubKey, pq.Signature = signed.PubKey, signed.Signature
	return pq, nil
}
