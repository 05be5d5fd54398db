package handlers

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/web"
)

// The lease page: books, epochs, workload logs (live), and the buyer's
// close, extend and dispute; a party's statement on a dispute.

func (s *Server) leasePage(c *gin.Context) {
	l, ok := s.visibleLease(c)
	if !ok {
		return
	}
	s.renderLease(c, http.StatusOK, l, leaseForms{})
}

// leaseForms are the lease page's forms with what the viewer sent and the
// errors to show; zero values render them empty.
type leaseForms struct {
	closeErr           string
	extendHours        string
	extendErr          string
	auto               *web.AutoExtendView // the auto-extend form as sent, with its errors
	dispute, statement *web.StatementForm
	port, portErr      string // the forward-a-port form as sent, and its error
}

// logTail is how many of the latest log lines the lease page shows.
const logTail = 300

func (s *Server) renderLease(c *gin.Context, status int, l *models.Lease, forms leaseForms) {
	ctx := c.Request.Context()
	if forms.dispute == nil {
		forms.dispute = &web.StatementForm{}
	}
	if forms.statement == nil {
		forms.statement = &web.StatementForm{}
	}
	eps, err := s.store.Epochs(ctx, l.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	disputes, err := s.store.DisputesOfLease(ctx, l.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	shells, err := s.store.ShellSessions(ctx, l.ID, 50)
	if err != nil {
		s.fail(c, err)
		return
	}
	logs, from, err := s.logTail(ctx, l.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	u := currentUser(c)
	v := web.LeaseView{ID: l.ID, OrderID: l.OrderID, Status: l.Status, Model: l.Model, GPUs: l.GPUs, MachineID: l.MachineID,
		ChainLeaseID: l.ChainLeaseID, CreateTx: l.CreateTx, PricePerHour: l.PricePerHour, PricePerEpoch: l.PricePerEpoch,
		EpochsTotal: l.EpochsTotal, Remaining: l.Remaining, Pending: l.Pending, Paid: l.Paid, Refunded: l.Refunded,
		Frozen: l.Frozen, Fees: l.Fees, WorkloadStatus: l.WorkloadStatus, CloseReason: l.CloseReason, Interruptible: l.Interruptible,
		EndsAt: web.FormatTime(l.EndsAt), Created: web.FormatTime(l.CreatedAt), LogsFrom: from,
		IsBuyer: l.BuyerID == u.ID, IsProvider: l.ProviderID == u.ID, CloseError: forms.closeErr, ExtendHours: forms.extendHours, ExtendError: forms.extendErr, Dispute: forms.dispute,
		Statement: forms.statement, FragmentURL: "/leases/" + l.ID + "?fragment=1"}
	if v.IsBuyer {
		// The buyer's alone: the outlook tells the wallet's balance.
		v.Auto = s.autoExtendView(ctx, l, forms.auto)
	}
	if l.PreemptAt != nil {
		v.PreemptAt = l.PreemptAt.UTC().Format("2006-01-02 15:04:05 UTC")
	}
	v.Shells = shellRows(shells, l.BuyerID)
	if v.IsBuyer {
		fwd, err := s.store.PortForwards(ctx, l.ID, 20)
		if err != nil {
			s.fail(c, err)
			return
		}
		v.Ports = web.PortsView{Rows: s.portRows(fwd), Enabled: s.portsDomain != "", Port: forms.port, Error: forms.portErr}
	}
	v.CloseReason = closeReason(l)
	if l.PullTotal > 0 {
		v.Pull = &web.PullView{Done: l.PullDone, Total: l.PullTotal, Cached: l.PullCached, Digest: l.ImageDigest}
	}
	for _, d := range disputes {
		row := web.LeaseDisputeRow{ID: d.ID, Status: d.Status, Opened: web.FormatTime(d.CreatedAt), BuyerStatement: d.BuyerStatement,
			ProviderStatement: d.ProviderStatement, BuyerBps: d.BuyerBps, Resolution: d.Resolution, ResolveTx: d.ResolveTx}
		if d.ResolvedAt != nil {
			row.Resolved = web.FormatTime(*d.ResolvedAt)
		}
		if d.Status == "open" {
			v.OpenDisputeID = d.ID
		}
		v.Disputes = append(v.Disputes, row)
	}
	if l.GPUUUIDs != "" {
		v.GPUUUIDs = strings.Split(l.GPUUUIDs, ",")
	}
	v.Provider = shortID(l.ProviderID)
	if p, err := s.store.UserByID(ctx, l.ProviderID); err == nil && p.Name != "" {
		v.Provider = p.Name
	}
	for _, e := range eps {
		v.Epochs = append(v.Epochs, web.EpochRow{N: e.N, Status: e.Status, ValidNonces: e.ValidNonces, Required: e.Required,
			Amount: e.Amount, TxHash: e.TxHash, Height: e.Height, Reason: e.Reason})
	}
	for _, ln := range logs {
		v.Logs = append(v.Logs, web.LogLine{Seq: ln.Seq, At: ln.At.UTC().Format("15:04:05"), Stream: ln.Stream, Text: ln.Text})
	}
	if wantsFragment(c) {
		s.renderFragment(c, status, web.LeaseLive(v))
		return
	}
	s.render(c, status, "Lease", web.LeasePage(s.page(c, "Lease"), v))
}

// logTail returns the latest logTail lines and, when older ones were left
// out, the sequence number of the first shown. The store pages forward
// only, so it walks the log; leases' logs are bounded by the agent's
// batches, and the full log stays available from the API.
func (s *Server) logTail(ctx context.Context, leaseID string) ([]models.LeaseLog, int64, error) {
	const page = 1000
	var tail []models.LeaseLog
	var after int64
	skipped := false
	for {
		lines, err := s.store.Logs(ctx, leaseID, after, page)
		if err != nil {
			return nil, 0, err
		}
		tail = append(tail, lines...)
		if len(tail) > logTail {
			tail = append(tail[:0:0], tail[len(tail)-logTail:]...)
			skipped = true
		}
		if len(lines) < page {
			break
		}
		after = lines[len(lines)-1].Seq
	}
	if skipped && len(tail) > 0 {
		return tail, tail[0].Seq, nil
	}
	return tail, 0, nil
}

// buyerLease loads a lease for an action only its buyer may take; anyone
// else gets "not found", as for the page of a lease they cannot see.
func (s *Server) buyerLease(c *gin.Context) (*models.Lease, bool) {
	return loadFor(s, c, s.store.LeaseByID, func(u *models.User, l *models.Lease) bool { return l.BuyerID == u.ID }, "Lease not found.")
}

func (s *Server) leaseClose(c *gin.Context) {
	l, ok := s.buyerLease(c)
	if !ok {
		return
	}
	if _, err := s.broker.CloseLease(c.Request.Context(), currentUser(c).ID, l.ID); err != nil {
		if highway.ErrorCode(err) == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{closeErr: highway.ErrorMessage(err)})
		return
	}
	s.setFlash(c, "success", "The lease is closed. Proven epochs are paid; the rest of the escrow is back in your wallet.")
	c.Redirect(http.StatusSeeOther, "/leases/"+l.ID)
}

// leaseExtend extends the buyer's lease by the form's hours: the provider's
// agent signs, the buyer's wallet escrows the added epochs.
func (s *Server) leaseExtend(c *gin.Context) {
	l, ok := s.buyerLease(c)
	if !ok {
		return
	}
	raw := strings.TrimSpace(c.PostForm("hours"))
	hours, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		s.renderLease(c, http.StatusUnprocessableEntity, l, leaseForms{extendHours: raw, extendErr: "Enter a whole number of hours."})
		return
	}
	got, err := s.broker.ExtendLease(c.Request.Context(), currentUser(c).ID, l.ID, hours)
	if err != nil {
		if highway.ErrorCode(err) == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{extendHours: raw, extendErr: highway.ErrorMessage(err)})
		return
	}
	s.setFlash(c, "success", "The lease is extended: it now ends "+web.FormatTime(got.EndsAt)+".")
	c.Redirect(http.StatusSeeOther, "/leases/"+l.ID)
}

// autoExtendView is the lease page's auto-extend: the setting, its
// outlook, and the form (as sent, when sent has it with errors).
func (s *Server) autoExtendView(ctx context.Context, l *models.Lease, sent *web.AutoExtendView) web.AutoExtendView {
	v := web.AutoExtendView{Hours: l.AutoExtendHours, Floor: strconv.FormatInt(l.AutoExtendFloor, 10), Note: l.AutoExtendNote,
		FormHrs: strconv.FormatInt(max(l.AutoExtendHours, 1), 10), FormFlr: highway.Amount(l.AutoExtendFloor).HWY()}
	if l.AutoExtendHours > 0 {
		will, why, err := s.broker.AutoExtendOutlook(ctx, l)
		if err != nil {
			// The chain or the wallet cannot be read now: the page still
			// renders, the outlook unknown.
			will, why = false, "the wallet's balance cannot be read now"
		}
		v.Will, v.WhyNot, v.At = will, why, web.FormatTime(s.broker.AutoExtendAt(l))
	}
	if sent != nil {
		v.FormHrs, v.FormFlr, v.HoursErr, v.FloorErr = sent.FormHrs, sent.FormFlr, sent.HoursErr, sent.FloorErr
	}
	return v
}

// leaseAutoExtend sets the buyer's auto-extend from the form: hours each
// time (0: off) and the wallet floor in HWY.
func (s *Server) leaseAutoExtend(c *gin.Context) {
	l, ok := s.buyerLease(c)
	if !ok {
		return
	}
	sent := &web.AutoExtendView{FormHrs: strings.TrimSpace(c.PostForm("hours")), FormFlr: strings.TrimSpace(c.PostForm("floor"))}
	hours, err := strconv.ParseInt(sent.FormHrs, 10, 64)
	if err != nil {
		sent.HoursErr = "Enter a whole number of hours (0 turns auto-extend off)."
	}
	floor := highway.Amount(0)
	if sent.FormFlr != "" {
		var ok bool
		if floor, ok = highway.ParseHWY(sent.FormFlr); !ok {
			sent.FloorErr = "Enter an amount of HWY with at most six decimals, e.g. 25 or 2.5."
		}
	}
	if sent.HoursErr != "" || sent.FloorErr != "" {
		s.renderLease(c, http.StatusUnprocessableEntity, l, leaseForms{auto: sent})
		return
	}
	got, err := s.broker.SetAutoExtend(c.Request.Context(), currentUser(c).ID, l.ID, hours, floor)
	if err != nil {
		if highway.ErrorCode(err) == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		if highway.ErrorField(err) == "floor" {
			sent.FloorErr = highway.ErrorMessage(err)
		} else {
			sent.HoursErr = highway.ErrorMessage(err)
		}
		s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{auto: sent})
		return
	}
	if got.AutoExtendHours == 0 {
		s.setFlash(c, "success", "Auto-extend is off: the lease ends "+web.FormatTime(got.EndsAt)+".")
	} else {
		s.setFlash(c, "success", "Auto-extend is on: "+strconv.FormatInt(got.AutoExtendHours, 10)+" h more each time, while your wallet keeps "+
			highway.Amount(got.AutoExtendFloor).HWY()+" HWY.")
	}
	c.Redirect(http.StatusSeeOther, "/leases/"+l.ID)
}

func (s *Server) leaseDispute(c *gin.Context) {
	l, ok := s.buyerLease(c)
	if !ok {
		return
	}
	f := &web.StatementForm{}
	f.Bind(c.PostForm)
	err := f.Validate()
	if err == nil {
		_, err = s.broker.OpenDispute(c.Request.Context(), currentUser(c).ID, l.ID, f.Statement)
	}
	if err != nil {
		s.formError(c, &f.Form, err, func(*web.Page) {
			fieldOrForm(&f.Form, []string{"statement"})
			s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{dispute: f})
		})
		return
	}
	s.setFlash(c, "success", "Dispute opened. The unpaid escrow is frozen until an arbiter decides.")
	c.Redirect(http.StatusSeeOther, "/leases/"+l.ID)
}

// disputeStatement takes the provider's side of an open dispute from the
// lease page.
func (s *Server) disputeStatement(c *gin.Context) {
	ctx := c.Request.Context()
	u := currentUser(c)
	f := &web.StatementForm{}
	f.Bind(c.PostForm)
	var d *models.Dispute
	err := f.Validate()
	if err == nil {
		d, err = s.broker.ProviderStatement(ctx, u.ID, c.Param("id"), f.Statement)
	}
	if err == nil {
		s.setFlash(c, "success", "Your statement is recorded; the arbiter reads it with the buyer's.")
		c.Redirect(http.StatusSeeOther, "/leases/"+d.LeaseID)
		return
	}
	// Only the provider of the dispute's lease gets its page back with
	// the error (the broker returns the dispute to it alone); anyone else
	// gets the broker's "not found".
	if d == nil {
		s.fail(c, err)
		return
	}
	l, lerr := s.store.LeaseByID(ctx, d.LeaseID)
	if lerr != nil {
		s.fail(c, err)
		return
	}
	s.formError(c, &f.Form, err, func(*web.Page) {
		fieldOrForm(&f.Form, []string{"statement"})
		s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{statement: f})
	})
}
