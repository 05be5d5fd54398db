package broker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	sdkerrors "github.com/cosmos/cosmos-sdk/types/errors"

	"github.com/highway-compute/highway"
	escrowtypes "github.com/highway-compute/highway/chain/x/escrow/types"
	"github.com/highway-compute/highway/market"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// Logs stores a batch of workload lines from the agent running the lease.
func (b *Broker) Logs(ctx context.Context, agentID string, batch protocol.LogBatch) error {
	l, err := b.store.LeaseByID(ctx, batch.LeaseID)
	if err != nil || l.AgentID != agentID {
		return &highway.Error{Code: highway.ENOTFOUND, Field: "lease_id", Message: "No lease " + batch.LeaseID + " is assigned to this agent."}
	}
	rows := make([]models.LeaseLog, 0, len(batch.Lines))
	for _, ln := range batch.Lines {
		rows = append(rows, models.LeaseLog{LeaseID: l.ID, Seq: int64(ln.Seq), At: time.UnixMilli(ln.Time).UTC(), Stream: ln.Stream, Text: ln.Text})
	}
	if err := b.store.AppendLogs(ctx, rows); err != nil {
		return err
	}
	b.mu.Lock()
	b.notifyLocked()
	b.mu.Unlock()
	return nil
}

// leaseReports records the workload states an agent reported with its
// heartbeats, and an image pull's progress; a report already recorded
// costs nothing.
func (b *Broker) leaseReports(ctx context.Context, agentID string, leases []protocol.RunningLease) {
	for _, rl := range leases {
		key := reportKey(rl)
		if b.reported[rl.LeaseID] == key {
			continue
		}
		l, err := b.store.LeaseByID(ctx, rl.LeaseID)
		if err != nil || l.AgentID != agentID {
			continue
		}
		cols := map[string]any{}
		if l.WorkloadStatus != rl.State {
			cols["workload_status"] = rl.State
		}
		if p := rl.Pull; p != nil && (p.Done != l.PullDone || p.Total != l.PullTotal || p.Cached != l.PullCached || p.Digest != l.ImageDigest) {
			cols["pull_done"], cols["pull_total"], cols["pull_cached"], cols["image_digest"] = p.Done, p.Total, p.Cached, p.Digest
		}
		if len(cols) > 0 {
			if err := b.store.UpdateLease(ctx, l.ID, cols); err != nil {
				b.log.Warn("lease workload status", "lease", l.ID, "err", err)
				continue
			}
			b.mu.Lock()
			b.notifyLocked() // the lease page's progress bar moves
			b.mu.Unlock()
		}
		switch rl.State {
		case protocol.LeaseExited, protocol.LeaseStopped, protocol.LeaseFailed:
			// Final: the agent stops reporting it, so forget it too.
			delete(b.reported, rl.LeaseID)
		default:
			b.reported[rl.LeaseID] = key
		}
	}
}

// reportKey is what of a lease report is recorded: its state and pull.
func reportKey(rl protocol.RunningLease) string {
	if p := rl.Pull; p != nil {
		return fmt.Sprintf("%s %d/%d %t %s", rl.State, p.Done, p.Total, p.Cached, p.Digest)
	}
	return rl.State
}

// CloseLease ends a lease early for its buyer: MsgCloseLease with the
// buyer's wallet; unearned escrow comes back at once (the chain's rule).
func (b *Broker) CloseLease(ctx context.Context, userID, leaseID string) (*models.Lease, error) {
	l, err := b.ownLease(ctx, userID, leaseID)
	if err != nil {
		return nil, err
	}
	if l.Status != models.LeaseActive {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "Only an active lease can be closed (this one is " + l.Status + ")."}
	}
	signer, err := b.walletSigner(ctx, userID)
	if err != nil {
		return nil, err
	}
	if _, err := b.cfg.Chain.Send(ctx, signer, &escrowtypes.MsgCloseLease{Sender: signer.Address().String(), LeaseId: l.ChainLeaseID}); err != nil {
		return nil, chainError(err)
	}
	if err := b.refreshLease(ctx, l.ChainLeaseID); err != nil {
		return nil, err
	}
	return b.store.LeaseByID(ctx, l.ID)
}

func (b *Broker) ownLease(ctx context.Context, userID, leaseID string) (*models.Lease, error) {
	l, err := b.store.LeaseByID(ctx, leaseID)
	if err != nil {
		return nil, err
	}
	if l.BuyerID != userID {
		return nil, highway.Errorf(highway.ENOTFOUND, "Lease not found.")
	}
	return l, nil
}

// chainError turns a chain rejection into a conflict the user can read.
func chainError(err error) error {
	switch {
	case errors.Is(err, sdkerrors.ErrInsufficientFunds), errors.Is(err, escrowtypes.ErrInsufficientFunds):
		// However it is found (our balance check, or the chain's when two
		// spends race), too little money is 402, not a server fault.
		return &highway.Error{Code: highway.EINSUFFICIENTFUNDS, Message: "Insufficient funds: the balance does not cover this."}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 && len(msg)-i < 120 {
		msg = msg[i+2:]
	}
	return &highway.Error{Code: highway.ECONFLICT, Message: "The chain refused: " + msg + "."}
}

// OpenDispute freezes a lease's escrow (MsgOpenDispute with the buyer's
// wallet) and records the buyer's statement for the admins.
func (b *Broker) OpenDispute(ctx context.Context, userID, leaseID, statement string) (*models.Dispute, error) {
	// Ownership first: someone else's lease is "not found" whatever they
	// send, so its existence does not leak through a validation error.
	l, err := b.ownLease(ctx, userID, leaseID)
	if err != nil {
		return nil, err
	}
	statement = strings.TrimSpace(statement)
	if statement == "" || len(statement) > 4000 {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "statement", Message: "Say what went wrong (1 to 4000 characters)."}
	}
	if l.Status == models.LeaseDisputed {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "This lease is already disputed."}
	}
	signer, err := b.walletSigner(ctx, userID)
	if err != nil {
		return nil, err
	}
	reason := statement
	if len(reason) > 256 {
		reason = reason[:256]
	}
	res, err := b.cfg.Chain.Send(ctx, signer, &escrowtypes.MsgOpenDispute{Buyer: signer.Address().String(), LeaseId: l.ChainLeaseID, Reason: reason})
	if err != nil {
		return nil, chainError(err)
	}
	d := &models.Dispute{ID: models.NewID(), LeaseID: l.ID, BuyerID: l.BuyerID, ProviderID: l.ProviderID, Status: "open",
		BuyerStatement: statement, OpenTx: res.Hash}
	if err := b.store.CreateDispute(ctx, d); err != nil {
		return nil, err
	}
	b.alert(ctx, l.ProviderID, AlertDisputeOpened, d.ID, "The buyer of lease "+l.ID+" opened a dispute: its unpaid escrow is frozen until an arbiter decides. Give your side on the lease page.", "/leases/"+l.ID)
	if err := b.refreshLease(ctx, l.ChainLeaseID); err != nil {
		return nil, err
	}
	return d, nil
}

// ProviderStatement records the provider's side of an open dispute on its
// lease, for the arbiter to read next to the buyer's. A later statement
// replaces it while the dispute is open; once decided it is final. When
// the statement is refused, the dispute still comes back if it is the
// caller's, so a page can show the error on it.
func (b *Broker) ProviderStatement(ctx context.Context, userID, disputeID, statement string) (*models.Dispute, error) {
	d, err := b.store.DisputeByID(ctx, disputeID)
	if err != nil {
		return nil, err
	}
	// Anyone but the lease's provider gets "not found", whatever they
	// send, as for the buyer's side.
	if d.ProviderID != userID {
		return nil, highway.Errorf(highway.ENOTFOUND, "Dispute not found.")
	}
	statement = strings.TrimSpace(statement)
	if statement == "" || len(statement) > 4000 {
		return d, &highway.Error{Code: highway.EINVALID, Field: "statement", Message: "Give your side of what happened (1 to 4000 characters)."}
	}
	if d.Status != "open" {
		return d, &highway.Error{Code: highway.ECONFLICT, Field: "statement", Message: "This dispute is already decided; statements are closed."}
	}
	if err := b.store.UpdateDispute(ctx, d.ID, map[string]any{"provider_statement": statement}); err != nil {
		return d, err
	}
	d.ProviderStatement = statement
	b.mu.Lock()
	b.notifyLocked() // both parties' open lease pages show it
	b.mu.Unlock()
	return d, nil
}

// ResolveDispute splits the frozen escrow (MsgResolveDispute with the
// arbiter key): buyerBps/10000 to the buyer, the rest to the provider.
func (b *Broker) ResolveDispute(ctx context.Context, disputeID string, buyerBps int64, note string) (*models.Dispute, error) {
	if buyerBps < 0 || buyerBps > 10000 {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "buyer_bps", Message: "The buyer's share is 0 to 10000 basis points."}
	}
	note = strings.TrimSpace(note)
	if len(note) > 256 {
		return nil, &highway.Error{Code: highway.EINVALID, Field: "note", Message: "The note is at most 256 characters."}
	}
	if b.cfg.Arbiter == nil {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "No arbiter key is configured on this marketplace."}
	}
	d, err := b.store.DisputeByID(ctx, disputeID)
	if err != nil {
		return nil, err
	}
	if d.Status != "open" {
		return nil, &highway.Error{Code: highway.ECONFLICT, Message: "This dispute is already resolved."}
	}
	l, err := b.store.LeaseByID(ctx, d.LeaseID)
	if err != nil {
		return nil, err
	}
	res, err := b.cfg.Chain.Send(ctx, b.cfg.Arbiter, &escrowtypes.MsgResolveDispute{Arbiter: b.cfg.Arbiter.Address().String(),
		LeaseId: l.ChainLeaseID, BuyerBps: uint32(buyerBps), Resolution: note})
	if err != nil {
		return nil, chainError(err)
	}
	now := b.now().UTC()
	if err := b.store.UpdateDispute(ctx, d.ID, map[string]any{"status": "resolved", "buyer_bps": buyerBps, "resolution": note,
		"resolve_tx": res.Hash, "resolved_at": &now}); err != nil {
		return nil, err
	}
	if err := b.refreshLease(ctx, l.ChainLeaseID); err != nil {
		return nil, err
	}
	decided := fmt.Sprintf("The dispute on lease %s is decided: %d.%02d %% of the frozen escrow to the buyer, the rest to the provider.", l.ID, buyerBps/100, buyerBps%100)
	if note != "" {
		decided += " The arbiter's note: " + note
	}
	b.alert(ctx, l.BuyerID, AlertDisputeDecided, d.ID, decided, "/leases/"+l.ID)
	b.alert(ctx, l.ProviderID, AlertDisputeDecided, d.ID, decided, "/leases/"+l.ID)
	return b.store.DisputeByID(ctx, d.ID)
}

// refreshLease copies a lease's books and status from the chain, the
// source of truth for money, and ends the marketplace's side of a lease
// the chain closed (engine hold released, workload stopped).
func (b *Broker) refreshLease(ctx context.Context, chainID uint64) error {
	l, err := b.store.LeaseByChainID(ctx, chainID)
	if highway.ErrorCode(err) == highway.ENOTFOUND {
		return nil // not one of ours (another marketplace's lease on the same chain)
	}
	if err != nil {
		return err
	}
	cl, err := b.cfg.Chain.Lease(ctx, chainID)
	if err != nil {
		return err
	}
	status := models.LeaseActive
	switch cl.Status {
	case escrowtypes.LEASE_STATUS_DISPUTED:
		status = models.LeaseDisputed
	case escrowtypes.LEASE_STATUS_ACTIVE:
	default:
		status = models.LeaseClosed
	}
	cols := map[string]any{"remaining": cl.Remaining.String(), "pending": cl.Pending.String(), "frozen": cl.Frozen.String(),
		"paid": cl.Paid.String(), "refunded": cl.Refunded.String(), "fees": cl.Fees.String(), "status": status,
		"close_reason": cl.CloseReason}
	if err := b.store.UpdateLease(ctx, l.ID, cols); err != nil {
		return err
	}
	if status != models.LeaseActive && l.Status == models.LeaseActive {
		b.endLease(ctx, l)
	}
	if grown := int64(cl.EpochsTotal) - l.EpochsTotal; grown > 0 && status == models.LeaseActive {
		if err := b.extended(ctx, l, int64(cl.EpochsTotal), l.EndsAt.Add(time.Duration(grown)*b.cfg.EpochDuration).UTC()); err != nil {
			return err
		}
	}
	b.mu.Lock()
	b.notifyLocked()
	b.mu.Unlock()
	return nil
}

// endLease frees the lease's GPUs in the engine, stops its workload and
// erases the buyer's registry login.
func (b *Broker) endLease(ctx context.Context, l *models.Lease) {
	b.endShellsOf(l.ID)
	b.closeForwardsOf(ctx, l.ID, "the lease ended")
	if err := b.store.ClearRegistryLogin(ctx, l.OrderID); err != nil {
		b.log.Warn("erase registry login", "lease", l.ID, "err", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if l.PreemptAt == nil { // a preempted lease's GPUs left the engine with the preemption
		if _, err := b.applyLocked(ctx, market.Command{Kind: market.KindReleaseLease, Order: l.OrderID}); err != nil {
			b.log.Warn("release lease in engine", "lease", l.ID, "err", err)
		}
	}
	if _, err := b.mail.post(ctx, l.AgentID, protocol.Assignment{LeaseID: l.ID, Action: protocol.ActionStop}); err != nil {
		b.log.Error("queue stop", "lease", l.ID, "err", err)
	}
	b.log.Info("lease ended", "lease", l.ID, "chain_lease", l.ChainLeaseID)
}

func parseU64(s string) uint64 {
	v, _ := strconv.ParseUint(strings.Trim(s, `"`), 10, 64)
	return v
}
