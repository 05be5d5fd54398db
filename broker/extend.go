package broker

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/chain/client"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// MaxExtendHours bounds one extension; the chain also bounds how many
// unsettled epochs a lease may hold (max_epochs_per_lease).
const MaxExtendHours = 720

// extensionQuoteWait is how long an extension waits for the provider's
// agent to sign; an online agent answers within its next poll.
const extensionQuoteWait = 30 * time.Second

// extension is an extension quote request waiting for the agent's answer.
type extension struct {
	agentID string
	answer  chan protocol.QuoteResponse
}

// ExtendLead is how long before its end a lease can still be extended:
// the provider's signature, the transaction and the new end's delivery to
// the agent must all land before the agent's timer stops the workload,
// or the buyer would pay for epochs whose workload already stopped.
const ExtendLead = time.Minute

// ExtendLease adds hours to the buyer's running lease. The provider
// consents to each extension: its agent signs a quote bound to the lease
// (ExtendsLease), which it does only for a lease it is running, at the
// lease's own class, GPU count and price, within its operator's policy.
// The buyer's wallet then sends MsgExtendLease, which escrows the added
// epochs, and the agent is told the new end (refreshLease). One
// extension of a lease runs at a time.
func (b *Broker) ExtendLease(ctx context.Context, userID, leaseID string, hours int64) (*models.Lease, error) {
	return b.extendLease(ctx, userID, leaseID, hours, nil)
}

// errNotDue: an automatic extension found, under the claim, that the
// lease no longer wants one (extended meanwhile, or auto-extend off).
var errNotDue = errors.New("the lease is no longer due for an automatic extension")

// extendLease is ExtendLease; due, when set, must still hold for the lease
// as read under the claim (the auto-extend loop's pass read it earlier,
// and a manual extension or a change of setting may have come between).
func (b *Broker) extendLease(ctx context.Context, userID, leaseID string, hours int64, due func(*models.Lease) bool) (*models.Lease, error) {
	if _, err := b.ownLease(ctx, userID, leaseID); err != nil {
		return nil, err
	}
	if hours < 1 || hours > MaxExtendHours {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "hours", Message: "Extend by 1 to " + strconv.Itoa(MaxExtendHours) + " hours."}
	}
	if !b.claimExtension(leaseID) {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "This lease is already being extended; try again in a moment."}
	}
	defer b.releaseExtension(leaseID)
	// Read under the claim: an extension that finished meanwhile moved
	// the end.
	l, err := b.store.LeaseByID(ctx, leaseID)
	if err != nil {
		return nil, err
	}
	if l.Status != models.LeaseActive {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "Only an active lease can be extended (this one is " + l.Status + ")."}
	}
	if l.PreemptAt != nil {
		// Its GPUs are another order's already: more epochs would be
		// escrowed for time it cannot run.
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "This lease was preempted and ends at " + l.PreemptAt.UTC().Format(noteTime) + "; it cannot be extended."}
	}
	if due != nil && !due(l) {
		return nil, errNotDue
	}
	if left := l.EndsAt.Sub(b.now()); left < ExtendLead {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "This lease ends in under " + ExtendLead.String() + "; it is too late to extend it. Rent again instead."}
	}
	epochMs := b.cfg.EpochDuration.Milliseconds()
	epochs := b.epochsFor(hours)
	cl, err := b.cfg.Chain.Lease(ctx, l.ChainLeaseID)
	if err != nil {
		return nil, err
	}
	if cl.EpochsTotal != uint64(l.EpochsTotal) {
		// An earlier extension landed on chain but is not recorded here
		// yet: record it first, so the buyer decides (and an automatic
		// extension checks it is due) on the real end.
		if err := b.refreshLease(ctx, l.ChainLeaseID); err != nil {
			b.log.Warn("record an earlier extension", "lease", l.ID, "err", err)
		}
		if due != nil {
			return nil, errNotDue // the next pass decides on the recorded end
		}
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "An earlier extension of this lease was just recorded; check its new end and try again."}
	}
	params, err := b.cfg.Chain.EscrowParams(ctx)
	if err != nil {
		return nil, err
	}
	// The chain's limit, checked before the provider is asked to sign.
	if unsettled := cl.EpochsTotal + uint64(epochs) - cl.NextEpoch; unsettled > params.MaxEpochsPerLease {
		most := (int64(params.MaxEpochsPerLease) - int64(cl.EpochsTotal-cl.NextEpoch)) * epochMs / 3_600_000
		return nil, &highway.Error{Code: highway.EINVALID, Field: "hours", Message: "A lease may hold at most " +
			strconv.FormatUint(params.MaxEpochsPerLease, 10) + " unpaid epochs; this one can be extended by at most " + strconv.FormatInt(max(most, 0), 10) + " hours now."}
	}
	w, err := b.store.WalletOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	q := protocol.Quote{Provider: cl.Provider, Buyer: w.Address, GPUClass: cl.GpuClass, GPUs: cl.Gpus,
		PricePerEpoch: cl.PricePerEpoch.String(), Epochs: uint64(epochs), ExpiresAt: b.now().Add(b.cfg.QuoteTTL).Unix(),
		Nonce: randomUint64() >> 1, ExtendsLease: l.ChainLeaseID}
	signed, err := b.askExtension(ctx, l.AgentID, q)
	if err != nil {
		return nil, err
	}
	signer, err := b.walletSigner(ctx, userID)
	if err != nil {
		return nil, err
	}
	cq, err := client.QuoteToChain(signed)
	if err != nil {
		return nil, err
	}
	if _, err := b.cfg.Chain.Send(ctx, signer, &escrowtypes.MsgExtendLease{Buyer: w.Address, LeaseId: l.ChainLeaseID, Quote: cq}); err != nil {
		return nil, chainError(err)
	}
	// The money moved: record it even if the buyer's request is gone
	// (the indexer would, a block later, but the page must not show the
	// old end meanwhile).
	ctx = context.WithoutCancel(ctx)
	if err := b.refreshLease(ctx, l.ChainLeaseID); err != nil {
		b.log.Warn("refresh extended lease; the indexer will", "lease", l.ID, "err", err)
	}
	b.log.Info("lease extended", "lease", l.ID, "chain_lease", l.ChainLeaseID, "epochs", epochs)
	return b.store.LeaseByID(ctx, l.ID)
}

// extended records that a lease's chain record grew to epochsTotal epochs
// ending at endsAt, and sends its agent the start again with the new end:
// the agent moves the running lease's end (runner.Manager.Start), and a
// restarted agent gets the current end with every redelivered start
// (stillDue). It is a whole start (the agent validates every assignment
// alike). GrowLease lets only one caller move the row.
func (b *Broker) extended(ctx context.Context, l *models.Lease, epochsTotal int64, endsAt time.Time) error {
	if _, err := b.store.GrowLease(ctx, l.ID, l.EpochsTotal, epochsTotal, endsAt); err != nil {
		return err
	}
	// Sent by whoever saw the chain ahead of the row, whether or not its
	// write landed: should the winner's post be lost, the other's still
	// reaches the agent, and a second copy of the same end changes
	// nothing there (runner.Manager.Start moves an end only later).
	var wl protocol.Workload
	if err := json.Unmarshal([]byte(l.WorkloadJSON), &wl); err != nil {
		b.log.Error("read the extended lease's workload", "lease", l.ID, "err", err)
	}
	if _, err := b.mail.post(ctx, l.AgentID, protocol.Assignment{LeaseID: l.ID, Action: protocol.ActionStart,
		GPUs: strings.Split(l.GPUUUIDs, ","), Workload: wl, EndsAt: endsAt.UnixMilli(), ChainLeaseID: l.ChainLeaseID}); err != nil {
		b.log.Error("queue the extended end", "lease", l.ID, "err", err)
	}
	return nil
}

func (b *Broker) claimExtension(leaseID string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.extending[leaseID] {
		return false
	}
	b.extending[leaseID] = true
	return true
}

func (b *Broker) releaseExtension(leaseID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.extending, leaseID)
}

// askExtension asks the lease's agent to sign q and waits for its answer,
// which must carry exactly the requested terms.
func (b *Broker) askExtension(ctx context.Context, agentID string, q protocol.Quote) (protocol.Quote, error) {
	reqID := "extend-" + models.NewID()
	x := &extension{agentID: agentID, answer: make(chan protocol.QuoteResponse, 1)}
	b.mu.Lock()
	b.extensions[reqID] = x
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.extensions, reqID)
		b.mu.Unlock()
	}()
	b.mail.ask(agentID, protocol.QuoteRequest{RequestID: reqID, ChainID: b.cfg.Chain.ChainID(), Quote: q})
	wait := time.NewTimer(extensionQuoteWait)
	defer wait.Stop()
	var r protocol.QuoteResponse
	select {
	case r = <-x.answer:
	case <-wait.C:
		return protocol.Quote{}, &highway.Error{Code: highway.ECONFLICT, Message: "The provider's agent did not answer; the lease was not extended and nothing was charged."}
	case <-ctx.Done():
		return protocol.Quote{}, ctx.Err()
	}
	if r.Error != "" {
		return protocol.Quote{}, &highway.Error{Code: highway.ECONFLICT, Message: "The provider's agent declined the extension: " + r.Error}
	}
	if !sameTerms(*r.Quote, q) {
		return protocol.Quote{}, &highway.Error{Code: highway.ECONFLICT, Message: "The provider's agent signed different terms than requested; nothing was charged."}
	}
	return *r.Quote, nil
}

// extensionAnswerLocked hands an agent's answer to the extension waiting for it;
// false when none is (a late answer, or another agent's).
func (b *Broker) extensionAnswerLocked(agentID string, r protocol.QuoteResponse) bool {
	x := b.extensions[r.RequestID]
	if x == nil || x.agentID != agentID {
		return false
	}
	select {
	case x.answer <- r:
	default: // answered already
	}
	return true
}

// sameTerms reports whether a signed quote carries exactly the requested
// terms (the signature and key aside).
func sameTerms(got, want protocol.Quote) bool {
	return got.Provider == want.Provider && got.Buyer == want.Buyer && got.GPUClass == want.GPUClass && got.GPUs == want.GPUs &&
		got.PricePerEpoch == want.PricePerEpoch && got.Epochs == want.Epochs && got.ExpiresAt == want.ExpiresAt &&
		got.Nonce == want.Nonce && got.ExtendsLease == want.ExtendsLease
}
