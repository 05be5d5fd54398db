package handlers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	sdkmath "cosmossdk.io/math"
	"github.com/a-h/templ"
	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/provider-agent/protocol"
	"github.com/highway-compute/highway/web"
)

// The market pages: browse offers (/market), place an order, follow an
// order and a lease, the wallet. They share the API's parsing (offerFilter,
// orderBody → orderRequest) so a page and the API never disagree on what
// is valid; live parts re-fetch themselves (?fragment=1) when the
// /market/events stream says the market changed.

// marketParams are the filter fields of /market, named as the API's query
// parameters so a page URL doubles as an API query.
var marketParams = []string{"model", "min_vram_gib", "count", "max_price", "region", "max_rtt_ms", "min_reliability_bps", "sort"}

// wantsFragment: the live script asks for just the part that changes.
func wantsFragment(c *gin.Context) bool { return c.Query("fragment") == "1" }

// renderFragment writes a component without the layout.
func (s *Server) renderFragment(c *gin.Context, status int, content templ.Component) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	if err := content.Render(c.Request.Context(), c.Writer); err != nil {
		s.log.Error("render fragment", "request_id", c.GetString(keyRequestID), "err", err)
	}
}

// fieldOrForm puts err beside field when the form shows that field, else
// over the form, so no message is lost on a field the page does not have.
func fieldOrForm(f *web.Form, shown []string) {
	for field, msg := range f.Errors {
		if !contains(shown, field) {
			delete(f.Errors, field)
			if f.Error == "" {
				f.Error = msg
			}
		}
	}
}

func (s *Server) marketPage(c *gin.Context) {
	f := web.NewForm()
	q := url.Values{}
	for _, k := range append(marketParams, "limit") {
		if v := c.Query(k); v != "" {
			f.Values[k] = v
			q.Set(k, v)
		}
	}
	models, regions := s.broker.Catalog()
	v := web.MarketView{Filter: f, Models: models, Regions: regions, Summary: summaryView(s.broker.Summary())}
	frag := cloneValues(q)
	if cur := c.Query("cursor"); cur != "" {
		frag.Set("cursor", cur)
	}
	frag.Set("fragment", "1")
	v.FragmentURL = "/market?" + frag.Encode()

	status := http.StatusOK
	filter, err := s.offerFilter(c)
	if err != nil {
		code := highway.ErrorCode(err)
		if code == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		if field := highway.ErrorField(err); field != "" {
			f.Errors[field] = highway.ErrorMessage(err)
		} else {
			f.Error = highway.ErrorMessage(err)
		}
		fieldOrForm(f, marketParams)
		status = statusOf(code)
	} else {
		offers, next := s.broker.Offers(filter)
		v.RTTRegion = filter.Region
		v.Offers = make([]web.OfferRow, 0, len(offers))
		for _, o := range offers {
			v.Offers = append(v.Offers, offerRow(o, filter.Region))
		}
		if next != "" {
			nq := cloneValues(q)
			nq.Set("cursor", next)
			v.NextURL = "/market?" + nq.Encode()
		}
		if filter.Offset > 0 {
			v.FirstURL = "/market"
			if len(q) > 0 {
				v.FirstURL += "?" + q.Encode()
			}
		}
	}
	if c.Query("fragment") == "summary" {
		s.renderFragment(c, http.StatusOK, web.MarketSummary(v.Summary))
		return
	}
	if wantsFragment(c) {
		s.renderFragment(c, status, web.OffersTable(v))
		return
	}
	s.render(c, status, "Market", web.Market(s.page(c, "Market"), v))
}

func cloneValues(v url.Values) url.Values {
	out := make(url.Values, len(v))
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// offerRow is an offer as the table shows it; rttRegion is the visitor's
// region ("" means the offer's own, as broker.Offers measures it).
func offerRow(o broker.Offer, rttRegion string) web.OfferRow {
	if rttRegion == "" {
		rttRegion = o.Region
	}
	rtt, has := o.RTTms.Get(rttRegion)
	return web.OfferRow{ID: o.ID, Model: o.Model, GPUsFree: o.GPUsFree, GPUsTotal: o.GPUsTotal, VRAMGiB: o.VRAMGiB,
		Price: o.PricePerGPUHour, Region: o.Region, RTTms: rtt, HasRTT: has, ReliabilityBps: o.ReliabilityBps,
		CUDA: o.CUDAVersion, Driver: o.DriverVersion, Provider: shortID(o.ProviderID), Simulated: o.Simulated}
}

// shortID names a provider on the public market without exposing who
// they are (the account's name or email is theirs to share).
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

func summaryView(s broker.Summary) web.SummaryView {
	v := web.SummaryView{H100EquivalentsMilli: s.H100EquivalentsMilli, MachinesOnline: s.MachinesOnline, Leases: s.Leases}
	for _, m := range s.Models {
		v.Models = append(v.Models, web.SummaryRow{Model: m.Model, GPUsOnline: m.GPUsOnline, GPUsFree: m.GPUsFree, MedianPrice: m.MedianPrice})
	}
	return v
}

// Server-sent events: how often at most, and the keep-alive. The stream
// also ends after sseMaxLife: a graceful shutdown waits for open requests,
// and EventSource reconnects on its own, so no stream holds a deploy for
// longer than that.
const (
	sseCoalesce = time.Second
	ssePing     = 15 * time.Second
	sseMaxLife  = 5 * time.Minute
)

// marketEvents is GET /market/events: "event: changed" whenever the
// market changes, so live pages re-fetch their fragment.
func (s *Server) marketEvents(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// A buffering reverse proxy would hold the events back.
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	ctx, cancel := context.WithCancel(c.Request.Context())
	defer cancel()
	go func() {
		select {
		case <-s.broker.Stopping():
			cancel()
		case <-ctx.Done():
		}
	}()
	// since is the generation the page was rendered at (live.js passes
	// it on): a change between that render and this stream is sent at once.
	since, err := strconv.ParseUint(c.Query("since"), 10, 64)
	streamChanges(ctx, c.Writer, s.broker.Changed, since, err == nil, sseCoalesce, ssePing, sseMaxLife)
}

// flushWriter is a response that can push what was written to the client.
type flushWriter interface {
	io.Writer
	Flush()
}

// streamChanges writes an SSE "changed" event each time changed's channel
// closes, at most one per coalesce (changes in between become one event
// at the end of the window, so none is lost), a comment line every ping,
// and returns when ctx ends, a write fails, or life has passed. With
// hasSince, a market already past generation since gets an event at once:
// the page that opened the stream was rendered before that change.
func streamChanges(ctx context.Context, w flushWriter, changed func() (<-chan struct{}, uint64), since uint64, hasSince bool, coalesce, ping, life time.Duration) {
	send := func(s string) bool {
		if _, err := io.WriteString(w, s); err != nil {
			return false
		}
		w.Flush()
		return true
	}
	// retry: how long EventSource waits before reconnecting after the end.
	if !send("retry: 3000\n: connected\n\n") {
		return
	}
	pinger := time.NewTicker(ping)
	defer pinger.Stop()
	end := time.NewTimer(life)
	defer end.Stop()
	var last time.Time
	var due <-chan time.Time // set while a coalesced event waits
	ch, gen := changed()
	if hasSince && gen != since {
		if !send("event: changed\ndata: {}\n\n") {
			return
		}
		last = time.Now()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-end.C:
			return
		case <-pinger.C:
			if !send(": ping\n\n") {
				return
			}
		case <-ch:
			// Re-arm first: a change after this point closes the new
			// channel and is reported too.
			ch, _ = changed()
			if due != nil {
				continue
			}
			if wait := coalesce - time.Since(last); wait > 0 {
				due = time.After(wait)
				continue
			}
			if !send("event: changed\ndata: {}\n\n") {
				return
			}
			last = time.Now()
		case <-due:
			due = nil
			if !send("event: changed\ndata: {}\n\n") {
				return
			}
			last = time.Now()
		}
	}
}

// orderFields are the order form's fields, named as the API's order body
// (the broker's errors name those fields, so they land beside the input).
var orderFields = []string{"type", "offer_id", "model", "count", "max_price_per_gpu_hour", "region", "max_rtt_ms", "hours", "expires_at", "command", "image", "idempotency_key"}

// newIdempotencyKey tags one rendering of the order form: a double submit
// places one order, while a form re-rendered after an error gets a new key
// (the failed attempt may be stored under the old one).
func newIdempotencyKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "form-" + base64.RawURLEncoding.EncodeToString(b)
}

// offerByID finds a listed offer (nil when it is gone or full).
func (s *Server) offerByID(id string) *broker.Offer {
	if id == "" {
		return nil
	}
	if o, ok := s.broker.Offer(id); ok {
		return &o
	}
	return nil
}

func (s *Server) orderNew(c *gin.Context) {
	f := web.NewForm()
	for _, k := range orderFields {
		f.Values[k] = c.Query(k)
	}
	if f.Values["type"] == "" {
		f.Values["type"] = "fok"
		if f.Values["offer_id"] != "" {
			f.Values["type"] = "rent_now"
		}
	}
	for k, d := range map[string]string{"count": "1", "hours": "1"} {
		if f.Values[k] == "" {
			f.Values[k] = d
		}
	}
	if id := f.Value("offer_id"); id != "" {
		if o := s.offerByID(id); o != nil {
			if f.Values["model"] == "" {
				f.Values["model"] = o.Model
			}
			if f.Values["region"] == "" {
				f.Values["region"] = o.Region
			}
		} else {
			f.Error = "That offer is no longer listed (it may be fully rented). Choose another on the market, or place a fill-or-kill order."
		}
	}
	s.renderOrderForm(c, http.StatusOK, f)
}

func (s *Server) renderOrderForm(c *gin.Context, status int, f *web.Form) {
	f.Values["idempotency_key"] = newIdempotencyKey()
	models, regions := s.broker.Catalog()
	v := web.OrderFormView{Form: f, Models: models, Regions: regions}
	o := s.offerByID(f.Value("offer_id"))
	if o != nil {
		row := offerRow(*o, f.Value("region"))
		v.Offer = &row
	}
	// The estimate: the max price when given, else (rent now) the offer's ask.
	price, _ := strconv.ParseInt(f.Value("max_price_per_gpu_hour"), 10, 64)
	if price <= 0 && o != nil {
		price = o.PricePerGPUHour
	}
	count, _ := strconv.ParseInt(f.Value("count"), 10, 64)
	if count == 0 {
		count = 1
	}
	hours, _ := strconv.ParseInt(f.Value("hours"), 10, 64)
	e := &v.Escrow
	e.Unavailable, e.Balance = s.walletBalance(c)
	if price > 0 && count > 0 && hours > 0 {
		per, epochs, total, ok := s.broker.EscrowFor(price, count, hours)
		e.Known = ok
		e.Price, e.Count, e.Hours, e.PerEpoch, e.Epochs, e.Total = price, count, hours, per, epochs, total.String()
		e.Enough = ok && e.Unavailable == "" && balanceCovers(e.Balance, total)
	}
	s.render(c, status, "Rent GPUs", web.OrderForm(s.page(c, "Rent GPUs"), v))
}

func balanceCovers(balance string, need sdkmath.Int) bool {
	b, ok := sdkmath.NewIntFromString(balance)
	return ok && b.GTE(need)
}

// walletBalance reads the viewer's balance; why it cannot, in plain words
// (no chain, chain unreachable) comes back instead of failing the page.
func (s *Server) walletBalance(c *gin.Context) (unavailable, balance string) {
	w, err := s.broker.Wallet(c.Request.Context(), currentUser(c).ID)
	if err == nil {
		return "", w.Balance.String()
	}
	if code := highway.ErrorCode(err); code != highway.EINTERNAL {
		return highway.ErrorMessage(err), ""
	}
	s.log.Warn("wallet balance", "request_id", c.GetString(keyRequestID), "err", err)
	return "Your balance cannot be read right now; the chain may be unreachable. Try again in a moment.", ""
}

// orderFormFields are the fields the order form shows; errors on others
// (min_vram_gib, offer_id) go over the form.
var orderFormFields = []string{"type", "model", "count", "max_price_per_gpu_hour", "region", "max_rtt_ms", "hours", "expires_at", "command", "image"}

func (s *Server) orderCreate(c *gin.Context) {
	f := web.NewForm()
	for _, k := range orderFields {
		f.Values[k] = c.PostForm(k)
	}
	b := orderBody{Type: f.Value("type"), OfferID: f.Value("offer_id"), Model: f.Value("model"), MaxPrice: strings.TrimSpace(f.Value("max_price_per_gpu_hour")),
		Region: f.Value("region"), Workload: protocol.Workload{Command: strings.TrimSpace(f.Value("command")), Image: strings.TrimSpace(f.Value("image"))}}
	if b.Type != "rent_now" {
		// The Rent link's offer only binds a rent-now order.
		b.OfferID = ""
	}
	var err error
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"count", &b.Count}, {"max_rtt_ms", &b.MaxRTTms}, {"hours", &b.Hours}} {
		if *p.dst, err = formInt(p.name, f.Value(p.name)); err != nil {
			break
		}
	}
	if err == nil && b.Type == "gtc" {
		b.ExpiresAt, err = formTime(f.Value("expires_at"))
	}
	var o *models.Order
	if err == nil {
		var r broker.OrderRequest
		if r, err = orderRequest(currentUser(c).ID, b); err == nil {
			r.IdempotencyKey = f.Value("idempotency_key")
			o, err = s.broker.PlaceOrder(c.Request.Context(), r)
		}
	}
	if err != nil {
		s.formError(c, f, orderFormError(err), func(*web.Page) {
			fieldOrForm(f, orderFormFields)
			s.renderOrderForm(c, statusOf(highway.ErrorCode(err)), f)
		})
		return
	}
	c.Redirect(http.StatusSeeOther, "/orders/"+o.ID)
}

// orderFormError puts the workload's errors on its boxes (the image's on
// the image, the rest on the command) and words the money and capacity
// answers for people.
func orderFormError(err error) error {
	var he *highway.Error
	if !errors.As(err, &he) {
		return err
	}
	cp := *he
	switch {
	case cp.Field == "workload.image":
		cp.Field = "image"
	case cp.Field == "workload" || strings.HasPrefix(cp.Field, "workload."):
		cp.Field = "command"
		if strings.Contains(cp.Message, "exactly one of command and image") {
			cp.Message = "Give a command to run, or a container image — one of the two."
		}
	}
	switch cp.Code {
	case highway.EINSUFFICIENTFUNDS:
		cp.Message = "Not enough funds: " + cp.Message
	case highway.ENOCAPACITY:
		cp.Message += " Try a higher price, fewer GPUs, a looser latency limit, or a good-til-cancelled order that waits for capacity."
	}
	return &cp
}

// formInt parses an optional whole number from a form.
func formInt(field, s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, &highway.Error{Code: highway.EINVALID, Field: field, Message: "Enter a whole number."}
	}
	return n, nil
}

// formTime reads a datetime-local value (taken as UTC, as the label says)
// or an RFC 3339 time, and returns RFC 3339 for orderRequest.
func formTime(s string) (string, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC().Format(time.RFC3339), nil
		}
	}
	return "", &highway.Error{Code: highway.EINVALID, Field: "expires_at", Message: "Give the date and time (UTC) until which the order may wait."}
}

func (s *Server) orderPage(c *gin.Context) {
	o, ok := s.ownOrder(c)
	if !ok {
		return
	}
	v := web.OrderView{ID: o.ID, Type: o.Type, Status: o.Status, Failure: o.Failure, Model: o.Model, Count: o.GPUs,
		MaxPrice: o.MaxPrice, Price: o.Price, Region: o.Region, MaxRTTms: o.MaxRTTms, Hours: o.Hours, LeaseID: o.LeaseID,
		Created: web.FormatTime(o.CreatedAt), FragmentURL: "/orders/" + o.ID + "?fragment=1"}
	if o.ExpiresAt != nil {
		v.Expires = web.FormatTime(*o.ExpiresAt)
	}
	if wantsFragment(c) {
		s.renderFragment(c, http.StatusOK, web.OrderStatus(v))
		return
	}
	s.render(c, http.StatusOK, "Order", web.OrderPage(s.page(c, "Order"), v))
}

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
	dispute, statement *web.Form
}

// logTail is how many of the latest log lines the lease page shows.
const logTail = 300

func (s *Server) renderLease(c *gin.Context, status int, l *models.Lease, forms leaseForms) {
	ctx := c.Request.Context()
	if forms.dispute == nil {
		forms.dispute = web.NewForm()
	}
	if forms.statement == nil {
		forms.statement = web.NewForm()
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
	logs, from, err := s.logTail(ctx, l.ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	u := currentUser(c)
	v := web.LeaseView{ID: l.ID, OrderID: l.OrderID, Status: l.Status, Model: l.Model, GPUs: l.GPUs, MachineID: l.MachineID,
		ChainLeaseID: l.ChainLeaseID, CreateTx: l.CreateTx, PricePerHour: l.PricePerHour, PricePerEpoch: l.PricePerEpoch,
		EpochsTotal: l.EpochsTotal, Remaining: l.Remaining, Pending: l.Pending, Paid: l.Paid, Refunded: l.Refunded,
		Frozen: l.Frozen, Fees: l.Fees, WorkloadStatus: l.WorkloadStatus, CloseReason: l.CloseReason,
		EndsAt: web.FormatTime(l.EndsAt), Created: web.FormatTime(l.CreatedAt), LogsFrom: from,
		IsBuyer: l.BuyerID == u.ID, IsProvider: l.ProviderID == u.ID, CloseError: forms.closeErr, Dispute: forms.dispute,
		Statement: forms.statement, FragmentURL: "/leases/" + l.ID + "?fragment=1"}
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
			Amount: e.Amount, TxHash: e.TxHash, Height: e.Height})
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

func (s *Server) leaseDispute(c *gin.Context) {
	l, ok := s.buyerLease(c)
	if !ok {
		return
	}
	f := web.NewForm()
	f.Values["statement"] = c.PostForm("statement")
	if _, err := s.broker.OpenDispute(c.Request.Context(), currentUser(c).ID, l.ID, f.Value("statement")); err != nil {
		s.formError(c, f, err, func(*web.Page) {
			fieldOrForm(f, []string{"statement"})
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
	f := web.NewForm()
	f.Values["statement"] = c.PostForm("statement")
	d, err := s.broker.ProviderStatement(ctx, u.ID, c.Param("id"), f.Value("statement"))
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
	s.formError(c, f, err, func(*web.Page) {
		fieldOrForm(f, []string{"statement"})
		s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{statement: f})
	})
}

// walletHistory is how many of the latest transfers the wallet page lists.
const walletHistory = 50

func (s *Server) walletPage(c *gin.Context) {
	s.renderWallet(c, http.StatusOK, web.NewForm())
}

func (s *Server) renderWallet(c *gin.Context, status int, f *web.Form) {
	v := web.WalletView{Withdraw: f, Faucet: s.faucetOn()}
	w, err := s.broker.Wallet(c.Request.Context(), currentUser(c).ID)
	switch code := highway.ErrorCode(err); {
	case err == nil:
		v.Address, v.Balance, v.Denom = w.Address, w.Balance.String(), w.Denom
		evs, err := s.broker.WalletHistory(c.Request.Context(), currentUser(c).ID, walletHistory)
		if err != nil {
			s.fail(c, err)
			return
		}
		for _, e := range evs {
			row := web.WalletEntry{Kind: e.Kind, Incoming: e.Incoming, Amount: e.Amount, Counterparty: e.Counterparty, TxHash: e.TxHash,
				Height: e.Height}
			if e.At != nil {
				row.At = web.FormatTime(*e.At)
			}
			v.History = append(v.History, row)
		}
	case code == highway.EINTERNAL:
		s.log.Warn("wallet", "request_id", c.GetString(keyRequestID), "err", err)
		v.Unavailable = "Your wallet cannot be read right now; the chain may be unreachable. Try again in a moment."
	default:
		v.Unavailable = highway.ErrorMessage(err)
	}
	s.render(c, status, "Wallet", web.WalletPage(s.page(c, "Wallet"), v))
}

func (s *Server) walletFaucet(c *gin.Context) {
	hash, ok := s.sendFaucet(c)
	if !ok {
		return
	}
	s.setFlash(c, "success", "Test funds sent (transaction "+hash+").")
	c.Redirect(http.StatusSeeOther, "/wallet")
}

func (s *Server) walletWithdraw(c *gin.Context) {
	f := web.NewForm()
	f.Values["to"] = strings.TrimSpace(c.PostForm("to"))
	f.Values["amount"] = strings.TrimSpace(c.PostForm("amount"))
	var hash string
	var err error
	amt, ok := sdkmath.NewIntFromString(f.Value("amount"))
	if ok {
		hash, err = s.broker.Withdraw(c.Request.Context(), currentUser(c).ID, f.Value("to"), amt)
	} else {
		err = &highway.Error{Code: highway.EINVALID, Field: "amount", Message: "Enter a whole number of uhwy (1 HWY = 1000000 uhwy)."}
	}
	if err != nil {
		s.formError(c, f, err, func(*web.Page) {
			fieldOrForm(f, []string{"to", "amount"})
			s.renderWallet(c, statusOf(highway.ErrorCode(err)), f)
		})
		return
	}
	s.setFlash(c, "success", "Sent "+web.FormatHWY(amt.String())+" HWY (transaction "+hash+").")
	c.Redirect(http.StatusSeeOther, "/wallet")
}
