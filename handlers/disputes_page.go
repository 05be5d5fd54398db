package handlers

import (
	"context"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/web"
)

// The arbiter's pages (admin role): the disputes queue, one dispute with
// its evidence and the resolve form, and suspending a provider. Money
// moves only through the broker (ResolveDispute signs with the arbiter
// key); these handlers parse, call it and render.

// Queue sizes: the open queue is what an arbiter works through; resolved
// disputes are history, the latest shown.
const (
	disputesOpenLimit     = 500
	disputesResolvedShown = 50
	// disputesResolvedScan bounds the read for the newest resolved ones:
	// the store lists oldest first, so the page reads up to this many and
	// keeps the newest.
	disputesResolvedScan = 2000
	// disputeLogTail is how many of the latest workload lines the dispute page shows.
	disputeLogTail = 200
)

// userNames resolves user ids to display names once per request.
type userNames struct {
	s     *Server
	ctx   context.Context
	names map[string]string
}

func (s *Server) userNames(ctx context.Context) *userNames {
	return &userNames{s: s, ctx: ctx, names: map[string]string{}}
}

// of returns the user's name, else email, else the short id (a deleted user).
func (n *userNames) of(id string) string {
	if v, ok := n.names[id]; ok {
		return v
	}
	v := shortID(id)
	if u, err := n.s.store.UserByID(n.ctx, id); err == nil {
		v = u.Email
		if u.Name != "" {
			v = u.Name + " <" + u.Email + ">"
		}
	}
	n.names[id] = v
	return v
}

// adminAttention is how many suspended or failing machines the overview lists.
const adminAttention = 20

// adminOverview is GET /admin: the market at a glance for the people who
// run it, and what needs them (open disputes, failing verifications,
// suspensions).
func (s *Server) adminOverview(c *gin.Context) {
	ctx := c.Request.Context()
	counts, err := s.store.AdminOverview(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	stats, err := s.broker.NetworkStats(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	ms, err := s.store.MachinesNeedingAttention(ctx, adminAttention)
	if err != nil {
		s.fail(c, err)
		return
	}
	sum := s.broker.Summary()
	now := s.now()
	v := web.AdminOverviewView{Users: counts.Users, OpenDisputes: counts.OpenDisputes, Suspended: counts.SuspendedMachines,
		FailingVerification: counts.FailingVerification, MachinesOnline: sum.MachinesOnline, H100eMilli: sum.H100EquivalentsMilli,
		LeasesActive: stats.LeasesActive, Escrowed: stats.Escrowed.String(), Paid: stats.Paid.String()}
	for _, m := range sum.Models {
		v.GPUsOnline += m.GPUsOnline
		v.GPUsFree += m.GPUsFree
	}
	if counts.OldestDispute != nil {
		v.OldestDispute = humanAgo(now.Sub(*counts.OldestDispute))
	}
	names := s.userNames(ctx)
	for _, m := range ms {
		row := web.AttentionRow{MachineID: m.ID, Hostname: m.Hostname, Provider: names.of(m.ProviderID), ProviderID: m.ProviderID}
		if m.SuspendedAt != nil {
			row.Problem, row.Detail = "suspended", m.SuspendReason
		} else {
			row.Problem, row.Detail = "verification failed", m.VerifyError
		}
		v.Attention = append(v.Attention, row)
	}
	s.render(c, http.StatusOK, "Admin", web.AdminOverview(s.page(c, "Admin"), v))
}

func (s *Server) adminDisputes(c *gin.Context) {
	ctx := c.Request.Context()
	open, err := s.store.Disputes(ctx, "", "open", disputesOpenLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	resolved, err := s.store.Disputes(ctx, "", "resolved", disputesResolvedScan)
	if err != nil {
		s.fail(c, err)
		return
	}
	slices.Reverse(resolved)
	if len(resolved) > disputesResolvedShown {
		resolved = resolved[:disputesResolvedShown]
	}
	names := s.userNames(ctx)
	now := s.now()
	var v web.DisputesView
	for _, list := range []struct {
		in  []models.Dispute
		out *[]web.DisputeRow
	}{{open, &v.Open}, {resolved, &v.Resolved}} {
		for _, d := range list.in {
			row := web.DisputeRow{ID: d.ID, LeaseID: d.LeaseID, Buyer: names.of(d.BuyerID), Provider: names.of(d.ProviderID),
				Frozen: "0", Age: humanAgo(now.Sub(d.CreatedAt)), Opened: web.FormatTime(d.CreatedAt), BuyerBps: d.BuyerBps}
			if l, err := s.store.LeaseByID(ctx, d.LeaseID); err == nil {
				row.ChainLeaseID, row.Frozen = l.ChainLeaseID, orZero(l.Frozen)
			} else if highway.ErrorCode(err) != highway.ENOTFOUND {
				s.fail(c, err)
				return
			}
			*list.out = append(*list.out, row)
		}
	}
	s.render(c, http.StatusOK, "Disputes", web.AdminDisputes(s.page(c, "Disputes"), v))
}

// orZero shows an unset amount as 0 rather than an empty cell.
func orZero(amount string) string {
	if amount == "" {
		return "0"
	}
	return amount
}

func (s *Server) adminDispute(c *gin.Context) {
	d, err := s.store.DisputeByID(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	s.renderDispute(c, http.StatusOK, d, &web.ResolveForm{}, &web.SuspendForm{})
}

// renderDispute shows a dispute with its evidence; resolve and suspend
// carry what was typed and any errors.
func (s *Server) renderDispute(c *gin.Context, status int, d *models.Dispute, resolve *web.ResolveForm, suspend *web.SuspendForm) {
	ctx := c.Request.Context()
	now := s.now()
	names := s.userNames(ctx)
	v := web.DisputeView{ID: d.ID, Status: d.Status, Opened: web.FormatTime(d.CreatedAt), Age: humanAgo(now.Sub(d.CreatedAt)),
		OpenTx: d.OpenTx, Buyer: names.of(d.BuyerID), Provider: names.of(d.ProviderID), ProviderID: d.ProviderID,
		BuyerStatement: d.BuyerStatement, ProviderStatement: d.ProviderStatement, Resolve: resolve, Suspend: suspend}
	if d.Status != "open" {
		o := &web.DisputeOutcome{BuyerBps: d.BuyerBps, Note: d.Resolution, ResolveTx: d.ResolveTx}
		if d.ResolvedAt != nil {
			o.ResolvedAt = web.FormatTime(*d.ResolvedAt)
		}
		v.Outcome = o
	}

	l, err := s.store.LeaseByID(ctx, d.LeaseID)
	switch {
	case err == nil:
		v.Lease = &web.DisputeLease{ID: l.ID, ChainLeaseID: l.ChainLeaseID, Status: l.Status, Model: l.Model, GPUs: l.GPUs,
			MachineID: l.MachineID, PricePerHour: l.PricePerHour, PricePerEpoch: orZero(l.PricePerEpoch), EpochsTotal: l.EpochsTotal,
			Remaining: orZero(l.Remaining), Pending: orZero(l.Pending), Frozen: orZero(l.Frozen), Paid: orZero(l.Paid),
			Refunded: orZero(l.Refunded), Created: web.FormatTime(l.CreatedAt), EndsAt: web.FormatTime(l.EndsAt)}
		if err := s.disputeEvidence(ctx, l, now, &v); err != nil {
			s.fail(c, err)
			return
		}
	case highway.ErrorCode(err) != highway.ENOTFOUND:
		s.fail(c, err)
		return
	}

	machines, err := s.store.ProviderMachines(ctx, d.ProviderID)
	if err != nil {
		s.fail(c, err)
		return
	}
	for _, m := range machines {
		if m.SuspendedAt != nil {
			v.Suspended, v.SuspendReason = true, m.SuspendReason
			break
		}
	}
	s.render(c, status, "Dispute", web.AdminDispute(s.page(c, "Dispute"), v))
}

// disputeEvidence fills the epoch timeline, the machine's heartbeat state
// and the workload's last lines.
func (s *Server) disputeEvidence(ctx context.Context, l *models.Lease, now time.Time, v *web.DisputeView) error {
	eps, err := s.store.Epochs(ctx, l.ID)
	if err != nil {
		return err
	}
	for _, e := range eps {
		switch e.Status {
		case "cleared":
			v.Cleared++
		case "missed":
			v.Missed++
		}
		v.Epochs = append(v.Epochs, web.EpochRow{N: e.N, Status: e.Status, ValidNonces: e.ValidNonces, Required: e.Required,
			Amount: orZero(e.Amount), TxHash: e.TxHash, Height: e.Height, Reason: e.Reason})
	}

	m, err := s.store.MachineByID(ctx, l.MachineID)
	switch {
	case err == nil:
		dm := &web.DisputeMachine{ID: m.ID, Hostname: m.Hostname, LastBeat: "never", LastBeatAt: "—",
			Online:   m.Online(now, s.agentCfg.HeartbeatInterval, s.agentCfg.OfflineMisses),
			Verified: m.VerifiedAt != nil, VerifyError: m.VerifyError}
		if m.LastHeartbeatAt != nil {
			dm.LastBeat, dm.LastBeatAt = humanAgo(now.Sub(*m.LastHeartbeatAt)), web.FormatTime(*m.LastHeartbeatAt)
		}
		v.Machine = dm
	case highway.ErrorCode(err) != highway.ENOTFOUND:
		return err
	}

	// logTail keeps the lease page's (longer) tail; the dispute page
	// shows the last disputeLogTail of it.
	logs, from, err := s.logTail(ctx, l.ID)
	if err != nil {
		return err
	}
	if len(logs) > disputeLogTail {
		logs = logs[len(logs)-disputeLogTail:]
		from = logs[0].Seq
	}
	v.LogsFrom = from
	for _, ln := range logs {
		v.Logs = append(v.Logs, web.LogLine{Seq: ln.Seq, At: ln.At.UTC().Format("2006-01-02 15:04:05"), Stream: ln.Stream, Text: ln.Text})
	}
	return nil
}

func (s *Server) adminResolveDispute(c *gin.Context) {
	ctx := c.Request.Context()
	d, err := s.store.DisputeByID(ctx, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	f := &web.ResolveForm{}
	f.Bind(c.PostForm)
	var resolved *models.Dispute
	err = f.Validate()
	if err == nil {
		resolved, err = s.broker.ResolveDispute(ctx, d.ID, f.BuyerBps, f.Note)
	}
	if err != nil {
		s.formError(c, &f.Form, err, func(*web.Page) {
			fieldOrForm(&f.Form, []string{"buyer_bps", "note"})
			s.renderDispute(c, statusOf(highway.ErrorCode(err)), d, f, &web.SuspendForm{})
		})
		return
	}
	s.setFlash(c, "success", "Dispute resolved: "+web.FormatBps(resolved.BuyerBps)+" to the buyer (transaction "+resolved.ResolveTx+").")
	c.Redirect(http.StatusSeeOther, "/admin/disputes/"+d.ID)
}

// adminSuspend is POST /admin/providers/:id/suspend and /reinstate. From
// a dispute page (dispute_id) it returns there, errors beside the reason;
// otherwise to the users page with a flash.
func (s *Server) adminSuspend(suspend bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		var d *models.Dispute
		if id := c.PostForm("dispute_id"); id != "" {
			var err error
			if d, err = s.store.DisputeByID(ctx, id); err != nil {
				s.fail(c, err)
				return
			}
		}
		f := &web.SuspendForm{}
		f.Bind(c.PostForm)
		err := f.Validate()
		if err == nil {
			err = s.broker.SuspendProvider(ctx, c.Param("id"), suspend, f.Reason)
		}
		if err != nil && d != nil {
			s.formError(c, &f.Form, err, func(*web.Page) {
				fieldOrForm(&f.Form, []string{"reason"})
				s.renderDispute(c, statusOf(highway.ErrorCode(err)), d, &web.ResolveForm{}, f)
			})
			return
		}
		msg := "Provider reinstated; their machines are listed again."
		if suspend {
			msg = "Provider suspended; their machines are off the market."
		}
		if d == nil {
			s.adminDone(c, err, msg)
			return
		}
		s.setFlash(c, "success", msg)
		c.Redirect(http.StatusSeeOther, "/admin/disputes/"+d.ID)
	}
}
