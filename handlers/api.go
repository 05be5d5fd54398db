package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"cosmossdk.io/math"
	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/provider-agent/protocol"
)

// The public JSON API (../shared/API.md; docs/api.md). Handlers parse,
// call the broker, and answer with the contract's shapes; amounts are
// decimal strings of micro-units.

// apiRoutes registers the API on its two groups: public (key optional)
// and keyed (key required).
func (s *Server) apiRoutes(public, api *gin.RouterGroup) {
	public.GET("/offers", s.apiOffers)
	public.GET("/market/summary", s.apiSummary)
	public.GET("/regions", s.apiRegions)

	api.POST("/orders", s.apiPlaceOrder)
	api.GET("/orders", s.apiOrders)
	api.GET("/orders/:id", s.apiOrder)
	api.DELETE("/orders/:id", s.apiCancelOrder)
	api.GET("/leases", s.apiLeases)
	api.GET("/leases/:id", s.apiLease)
	api.GET("/leases/:id/logs", s.apiLeaseLogs)
	api.POST("/leases/:id/close", s.apiCloseLease)
	api.POST("/leases/:id/disputes", s.apiStatement(http.StatusCreated, s.broker.OpenDispute))
	api.GET("/disputes", s.apiDisputes)
	api.GET("/disputes/:id", s.apiDispute)
	api.GET("/wallet", s.apiWallet)
	api.GET("/wallet/history", s.apiWalletHistory)
	api.POST("/wallet/faucet", s.apiFaucet)
	api.POST("/wallet/withdraw", s.apiWithdraw)

	prov := api.Group("", s.requireRole("provider"))
	prov.GET("/machines", s.apiMachines)
	prov.GET("/prices", s.apiPrices)
	prov.PUT("/prices", s.apiSetPrice)
	prov.POST("/disputes/:id/statement", s.apiStatement(http.StatusOK, s.broker.ProviderStatement))

	admin := api.Group("", s.requireRole("admin"))
	admin.POST("/disputes/:id/resolve", s.apiResolveDispute)
	admin.POST("/providers/:id/suspend", s.apiSuspend(true))
	admin.POST("/providers/:id/reinstate", s.apiSuspend(false))
}

// bindJSON decodes a request body strictly: unknown fields and trailing
// data are errors, so a typo in a field name is not silently ignored.
func bindJSON(c *gin.Context, v any) error {
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, 1<<20))
	if err != nil {
		return &highway.Error{Code: highway.EINVALID, Message: "Could not read the request body."}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		msg := "The body is not valid JSON for this request: " + err.Error() + "."
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return &highway.Error{Code: highway.EINVALID, Field: ute.Field, Message: "Wrong type for " + ute.Field + "."}
		}
		return &highway.Error{Code: highway.EINVALID, Message: msg}
	}
	if dec.More() {
		return &highway.Error{Code: highway.EINVALID, Message: "Unexpected data after the JSON body."}
	}
	return nil
}

// amount parses a micro-unit amount given as a JSON string.
func amount(field, s string, allowZero bool) (int64, error) {
	if s == "" && allowZero {
		return 0, nil
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || (v == 0 && !allowZero) {
		return 0, &highway.Error{Code: highway.EINVALID, Field: field, Message: "Must be a positive integer number of micro-units, as a string."}
	}
	return v, nil
}

func queryInt(c *gin.Context, name string) (int64, error) {
	v := c.Query(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, &highway.Error{Code: highway.EINVALID, Field: name, Message: name + " must be a non-negative integer."}
	}
	return n, nil
}

func listLimit(c *gin.Context) (int, error) {
	n, err := queryInt(c, "limit")
	if err != nil {
		return 0, err
	}
	if n == 0 {
		n = 50
	}
	if n > 500 {
		return 0, &highway.Error{Code: highway.EINVALID, Field: "limit", Message: "limit is at most 500."}
	}
	return int(n), nil
}

// offerFilter reads the offer filters from the query string (the browse
// page and the API share it, so a page URL is a shareable API query).
func (s *Server) offerFilter(c *gin.Context) (broker.OfferFilter, error) {
	f := broker.OfferFilter{Model: c.Query("model"), Region: c.Query("region"), Sort: c.Query("sort")}
	var err error
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"min_vram_gib", &f.MinVRAMGiB}, {"count", &f.Count}, {"max_price", &f.MaxPrice}, {"max_rtt_ms", &f.MaxRTTms}, {"min_reliability_bps", &f.MinReliability}} {
		if *p.dst, err = queryInt(c, p.name); err != nil {
			return f, err
		}
	}
	switch f.Sort {
	case "", "price", "rtt", "reliability":
	default:
		return f, &highway.Error{Code: highway.EINVALID, Field: "sort", Message: "sort is price, rtt or reliability."}
	}
	models, regions := s.broker.Catalog()
	if f.Model != "" && !contains(models, f.Model) {
		return f, &highway.Error{Code: highway.EINVALID, Field: "model", Message: "Unknown GPU model."}
	}
	if f.Region != "" && !contains(regions, f.Region) {
		return f, &highway.Error{Code: highway.EINVALID, Field: "region", Message: "Unknown region."}
	}
	limit, err := listLimit(c)
	if err != nil {
		return f, err
	}
	f.Limit = limit
	if cur := c.Query("cursor"); cur != "" {
		off, err := strconv.Atoi(cur)
		if err != nil || off < 0 {
			return f, &highway.Error{Code: highway.EINVALID, Field: "cursor", Message: "Invalid cursor."}
		}
		f.Offset = off
	}
	return f, nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (s *Server) apiOffers(c *gin.Context) {
	f, err := s.offerFilter(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	p := offerPages.Get().(*offerPage)
	next := s.broker.OffersInto(&p.page, f)
	p.json = appendOffersJSON(p.json[:0], p.page.Offers, next)
	c.Data(http.StatusOK, "application/json; charset=utf-8", p.json)
	if cap(p.json) <= 1<<20 { // an odd huge page is not kept
		offerPages.Put(p)
	}
}

func (s *Server) apiSummary(c *gin.Context) {
	sum := s.broker.Summary()
	type line struct {
		broker.ModelSummary
		Median string `json:"median_price_per_gpu_hour"`
	}
	out := make([]line, len(sum.Models))
	for i, m := range sum.Models {
		out[i] = line{ModelSummary: m, Median: strconv.FormatInt(m.MedianPrice, 10)}
	}
	c.JSON(http.StatusOK, gin.H{"models": out, "regions": sum.Regions, "h100_equivalents_online": float64(sum.H100EquivalentsMilli) / 1000,
		"machines_online": sum.MachinesOnline, "leases_active": sum.Leases})
}

func (s *Server) apiRegions(c *gin.Context) {
	_, regions := s.broker.Catalog()
	out := make([]gin.H, len(regions))
	for i, r := range regions {
		out[i] = gin.H{"id": r, "name": r}
	}
	c.JSON(http.StatusOK, gin.H{"regions": out})
}

type orderBody struct {
	Type         string            `json:"type"`
	OfferID      string            `json:"offer_id"`
	Model        string            `json:"model"`
	MinVRAMGiB   int64             `json:"min_vram_gib"`
	Count        int64             `json:"count"`
	MaxPrice     string            `json:"max_price_per_gpu_hour"`
	Region       string            `json:"region"`
	MaxRTTms     int64             `json:"max_rtt_ms"`
	Hours        int64             `json:"hours"`
	ExpiresAt    string            `json:"expires_at"`
	Workload     protocol.Workload `json:"workload"`
	LatencyFirst bool              `json:"latency_first"`
}

// orderRequest checks an order body (API or form) and builds the broker's request.
func orderRequest(buyerID string, b orderBody) (broker.OrderRequest, error) {
	price, err := amount("max_price_per_gpu_hour", b.MaxPrice, b.Type == "rent_now")
	if err != nil {
		return broker.OrderRequest{}, err
	}
	r := broker.OrderRequest{BuyerID: buyerID, Type: b.Type, OfferID: b.OfferID, Model: b.Model, MinVRAMGiB: b.MinVRAMGiB,
		Count: b.Count, MaxPrice: price, Region: b.Region, MaxRTTms: b.MaxRTTms, Hours: b.Hours, LatencyFirst: b.LatencyFirst,
		Workload: b.Workload}
	if b.Hours <= 0 {
		return r, &highway.Error{Code: highway.EINVALID, Field: "hours", Message: "Hours must be at least 1."}
	}
	if b.Type == "gtc" {
		t, err := time.Parse(time.RFC3339, b.ExpiresAt)
		if err != nil {
			return r, &highway.Error{Code: highway.EINVALID, Field: "expires_at", Message: "A good-til-cancelled order needs expires_at (RFC 3339)."}
		}
		r.ExpiresAt = t
	}
	return r, nil
}

func (s *Server) apiPlaceOrder(c *gin.Context) {
	var b orderBody
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	r, err := orderRequest(currentUser(c).ID, b)
	if err != nil {
		s.fail(c, err)
		return
	}
	r.IdempotencyKey = c.GetHeader("Idempotency-Key")
	o, err := s.broker.PlaceOrder(c.Request.Context(), r)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"order": orderJSON(o)})
}

func orderJSON(o *models.Order) gin.H {
	h := gin.H{"id": o.ID, "type": o.Type, "status": o.Status, "lease_id": o.LeaseID, "failure": o.Failure,
		"model": o.Model, "count": o.GPUs, "max_price_per_gpu_hour": strconv.FormatInt(o.MaxPrice, 10), "region": o.Region,
		"max_rtt_ms": o.MaxRTTms, "hours": o.Hours, "machine_id": o.MachineID, "created_at": o.CreatedAt.UTC().Format(time.RFC3339)}
	if o.Price > 0 {
		h["price_per_gpu_hour"] = strconv.FormatInt(o.Price, 10)
	}
	if o.ExpiresAt != nil {
		h["expires_at"] = o.ExpiresAt.UTC().Format(time.RFC3339)
	}
	return h
}

func (s *Server) apiOrders(c *gin.Context) {
	limit, err := listLimit(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	os, err := s.store.OrdersOf(c.Request.Context(), currentUser(c).ID, limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, len(os))
	for i := range os {
		out[i] = orderJSON(&os[i])
	}
	c.JSON(http.StatusOK, gin.H{"orders": out, "next_cursor": ""})
}

// loadFor loads the resource named by :id and lets the current user have
// it only if may says so; anyone else gets "not found", so ids cannot be
// probed. On failure it has answered and returns false.
func loadFor[T any](s *Server, c *gin.Context, load func(context.Context, string) (*T, error), may func(*models.User, *T) bool, notFound string) (*T, bool) {
	v, err := load(c.Request.Context(), c.Param("id"))
	if err == nil && !may(currentUser(c), v) {
		err = highway.Errorf(highway.ENOTFOUND, "%s", notFound)
	}
	if err != nil {
		s.fail(c, err)
		return nil, false
	}
	return v, true
}

// ownOrder loads an order of the current user.
func (s *Server) ownOrder(c *gin.Context) (*models.Order, bool) {
	return loadFor(s, c, s.store.OrderByID, func(u *models.User, o *models.Order) bool { return o.BuyerID == u.ID }, "Order not found.")
}

func (s *Server) apiOrder(c *gin.Context) {
	if o, ok := s.ownOrder(c); ok {
		c.JSON(http.StatusOK, gin.H{"order": orderJSON(o)})
	}
}

func (s *Server) apiCancelOrder(c *gin.Context) {
	o, err := s.broker.CancelOrder(c.Request.Context(), currentUser(c).ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"order": orderJSON(o)})
}

// leaseVisible: buyers see their leases, providers the leases on their
// machines, admins all.
func leaseVisible(u *models.User, l *models.Lease) bool {
	return l.BuyerID == u.ID || l.ProviderID == u.ID || u.HasRole("admin")
}

func (s *Server) leaseJSON(c *gin.Context, l *models.Lease) (gin.H, error) {
	eps, err := s.store.Epochs(c.Request.Context(), l.ID)
	if err != nil {
		return nil, err
	}
	epochs := make([]gin.H, len(eps))
	for i, e := range eps {
		epochs[i] = gin.H{"n": e.N, "status": e.Status, "valid_nonces": e.ValidNonces, "required": e.Required, "amount": e.Amount, "tx_hash": e.TxHash, "height": e.Height}
	}
	gpus := []string{}
	if l.GPUUUIDs != "" {
		gpus = strings.Split(l.GPUUUIDs, ",")
	}
	return gin.H{"id": l.ID, "chain_lease_id": l.ChainLeaseID, "order_id": l.OrderID, "status": l.Status, "buyer_id": l.BuyerID,
		"provider_id": l.ProviderID, "machine_id": l.MachineID, "model": l.Model, "gpus": l.GPUs, "gpu_uuids": gpus,
		"price_per_gpu_hour": strconv.FormatInt(l.PricePerHour, 10), "price_per_epoch": l.PricePerEpoch, "epochs_total": l.EpochsTotal,
		"epochs": epochs, "escrow": gin.H{"remaining": l.Remaining, "pending": l.Pending, "paid": l.Paid, "refunded": l.Refunded,
			"frozen": l.Frozen, "fees": l.Fees}, "workload_status": l.WorkloadStatus, "create_tx": l.CreateTx,
		"close_reason": l.CloseReason, "ends_at": l.EndsAt.UTC().Format(time.RFC3339), "created_at": l.CreatedAt.UTC().Format(time.RFC3339)}, nil
}

func (s *Server) apiLeases(c *gin.Context) {
	limit, err := listLimit(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	role := c.DefaultQuery("role", "buyer")
	if role != "buyer" && role != "provider" {
		s.fail(c, &highway.Error{Code: highway.EINVALID, Field: "role", Message: "role is buyer or provider."})
		return
	}
	ls, err := s.store.LeasesOf(c.Request.Context(), currentUser(c).ID, role == "provider", limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, 0, len(ls))
	for i := range ls {
		j, err := s.leaseJSON(c, &ls[i])
		if err != nil {
			s.fail(c, err)
			return
		}
		out = append(out, j)
	}
	c.JSON(http.StatusOK, gin.H{"leases": out, "next_cursor": ""})
}

func (s *Server) visibleLease(c *gin.Context) (*models.Lease, bool) {
	return loadFor(s, c, s.store.LeaseByID, leaseVisible, "Lease not found.")
}

func (s *Server) apiLease(c *gin.Context) {
	l, ok := s.visibleLease(c)
	if !ok {
		return
	}
	j, err := s.leaseJSON(c, l)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"lease": j})
}

func (s *Server) apiLeaseLogs(c *gin.Context) {
	l, ok := s.visibleLease(c)
	if !ok {
		return
	}
	after, err := queryInt(c, "after")
	if err != nil {
		s.fail(c, err)
		return
	}
	lines, err := s.store.Logs(c.Request.Context(), l.ID, after, 1000)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, len(lines))
	for i, ln := range lines {
		out[i] = gin.H{"seq": ln.Seq, "time": ln.At.UTC().Format(time.RFC3339Nano), "stream": ln.Stream, "text": ln.Text}
	}
	c.JSON(http.StatusOK, gin.H{"lines": out})
}

func (s *Server) apiCloseLease(c *gin.Context) {
	l, err := s.broker.CloseLease(c.Request.Context(), currentUser(c).ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	j, err := s.leaseJSON(c, l)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"lease": j})
}

func disputeJSON(d *models.Dispute) gin.H {
	h := gin.H{"id": d.ID, "lease_id": d.LeaseID, "status": d.Status, "buyer_bps": d.BuyerBps, "resolution": d.Resolution,
		"statements": []gin.H{{"by": "buyer", "text": d.BuyerStatement}}, "open_tx": d.OpenTx, "resolve_tx": d.ResolveTx,
		"created_at": d.CreatedAt.UTC().Format(time.RFC3339)}
	if d.ProviderStatement != "" {
		h["statements"] = append(h["statements"].([]gin.H), gin.H{"by": "provider", "text": d.ProviderStatement})
	}
	return h
}

// apiStatement takes a dispute statement ({"statement"}) for the id in the
// path: the buyer opening a dispute on a lease (201) and the provider
// answering one (200) differ only in the broker call.
func (s *Server) apiStatement(status int, act func(ctx context.Context, userID, id, statement string) (*models.Dispute, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		var b struct {
			Statement string `json:"statement"`
		}
		if err := bindJSON(c, &b); err != nil {
			s.fail(c, err)
			return
		}
		d, err := act(c.Request.Context(), currentUser(c).ID, c.Param("id"), b.Statement)
		if err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(status, gin.H{"dispute": disputeJSON(d)})
	}
}

func (s *Server) apiDisputes(c *gin.Context) {
	limit, err := listLimit(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	u := currentUser(c)
	owner := u.ID
	if u.HasRole("admin") {
		owner = ""
	}
	ds, err := s.store.Disputes(c.Request.Context(), owner, c.Query("status"), limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, len(ds))
	for i := range ds {
		out[i] = disputeJSON(&ds[i])
	}
	c.JSON(http.StatusOK, gin.H{"disputes": out, "next_cursor": ""})
}

func (s *Server) apiDispute(c *gin.Context) {
	d, err := s.store.DisputeByID(c.Request.Context(), c.Param("id"))
	u := currentUser(c)
	if err == nil && d.BuyerID != u.ID && d.ProviderID != u.ID && !u.HasRole("admin") {
		err = highway.Errorf(highway.ENOTFOUND, "Dispute not found.")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"dispute": disputeJSON(d)})
}

func (s *Server) apiResolveDispute(c *gin.Context) {
	var b struct {
		BuyerBps *int64 `json:"buyer_bps"`
		Note     string `json:"note"`
	}
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	if b.BuyerBps == nil {
		s.fail(c, &highway.Error{Code: highway.EINVALID, Field: "buyer_bps", Message: "buyer_bps is required (0 to 10000)."})
		return
	}
	d, err := s.broker.ResolveDispute(c.Request.Context(), c.Param("id"), *b.BuyerBps, b.Note)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"dispute": disputeJSON(d), "tx_hash": d.ResolveTx})
}

func (s *Server) apiSuspend(suspend bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		var b struct {
			Reason string `json:"reason"`
		}
		if suspend {
			if err := bindJSON(c, &b); err != nil {
				s.fail(c, err)
				return
			}
		}
		if _, err := s.store.UserByID(c.Request.Context(), c.Param("id")); err != nil {
			s.fail(c, err)
			return
		}
		// The same path as the admin page: the engine stops matching the
		// provider's offers and the reason is stored for the provider.
		if err := s.suspendProvider(c.Request.Context(), c.Param("id"), suspend, b.Reason); err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"provider_id": c.Param("id"), "suspended": suspend, "reason": strings.TrimSpace(b.Reason)})
	}
}

func (s *Server) apiWallet(c *gin.Context) {
	w, err := s.broker.Wallet(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"address": w.Address, "balances": []gin.H{{"denom": w.Denom, "amount": w.Balance.String()}}})
}

func (s *Server) apiWalletHistory(c *gin.Context) {
	limit, err := listLimit(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	evs, err := s.broker.WalletHistory(c.Request.Context(), currentUser(c).ID, limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, len(evs))
	for i, e := range evs {
		h := gin.H{"height": e.Height, "tx_hash": e.TxHash, "kind": e.Kind, "direction": "out", "counterparty": e.Counterparty,
			"amount": e.Amount, "time": nil}
		if e.Incoming {
			h["direction"] = "in"
		}
		if e.At != nil {
			h["time"] = e.At.UTC().Format(time.RFC3339)
		}
		out[i] = h
	}
	c.JSON(http.StatusOK, gin.H{"entries": out})
}

func (s *Server) apiFaucet(c *gin.Context) {
	if hash, ok := s.sendFaucet(c); ok {
		c.JSON(http.StatusOK, gin.H{"tx_hash": hash})
	}
}

// sendFaucet sends the user dev-faucet funds; without a faucet, or when
// sending failed, it has answered and reports false.
func (s *Server) sendFaucet(c *gin.Context) (string, bool) {
	if !s.faucetOn() {
		s.fail(c, highway.Errorf(highway.ENOTFOUND, "There is no faucet on this marketplace."))
		return "", false
	}
	hash, err := s.broker.Faucet(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return "", false
	}
	return hash, true
}

func (s *Server) apiWithdraw(c *gin.Context) {
	var b struct {
		To     string `json:"to"`
		Amount string `json:"amount"`
	}
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	amt, ok := math.NewIntFromString(b.Amount)
	if !ok {
		s.fail(c, &highway.Error{Code: highway.EINVALID, Field: "amount", Message: "Amount must be an integer number of micro-units, as a string."})
		return
	}
	hash, err := s.broker.Withdraw(c.Request.Context(), currentUser(c).ID, b.To, amt)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"tx_hash": hash})
}

func (s *Server) apiMachines(c *gin.Context) {
	ms, err := s.store.ProviderMachines(c.Request.Context(), currentUser(c).ID)
	if err != nil {
		s.fail(c, err)
		return
	}
	now := time.Now()
	out := make([]gin.H, len(ms))
	for i, m := range ms {
		gpus := make([]gin.H, len(m.GPUs))
		for j, g := range m.GPUs {
			gpus[j] = gin.H{"index": g.Idx, "uuid": g.UUID, "name": g.Name, "model": g.Class, "memory_total_mib": g.MemoryTotalMiB,
				"utilization_pct": g.UtilizationPct, "temperature_c": g.TemperatureC, "free": g.Free, "lease_id": g.LeaseID}
		}
		out[i] = gin.H{"id": m.ID, "hostname": m.Hostname, "region": m.Region, "simulated": m.Simulated,
			"online": m.Online(now, s.agentCfg.HeartbeatInterval, s.agentCfg.OfflineMisses), "verified": m.VerifiedAt != nil,
			"verify_error": m.VerifyError, "suspended": m.SuspendedAt != nil, "provider_address": m.ProviderAddress, "gpus": gpus}
		if r, ok := s.broker.Reliability(m.ID); ok {
			out[i]["reliability"] = gin.H{"reliability_bps": r.ReliabilityBps, "uptime_bps": r.UptimeBps,
				"epochs_cleared": r.EpochsCleared, "epochs_missed": r.EpochsMissed}
		}
	}
	c.JSON(http.StatusOK, gin.H{"machines": out})
}

func (s *Server) apiPrices(c *gin.Context) {
	ps := s.broker.Prices(currentUser(c).ID)
	out := []gin.H{}
	models, _ := s.broker.Catalog()
	for _, m := range models {
		if p, ok := ps[m]; ok {
			out = append(out, gin.H{"model": m, "price_per_gpu_hour": strconv.FormatInt(p, 10)})
		}
	}
	c.JSON(http.StatusOK, gin.H{"prices": out})
}

func (s *Server) apiSetPrice(c *gin.Context) {
	var b struct {
		Model string `json:"model"`
		Price string `json:"price_per_gpu_hour"`
	}
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	p, err := amount("price_per_gpu_hour", b.Price, false)
	if err == nil {
		err = s.broker.SetPrice(c.Request.Context(), currentUser(c).ID, b.Model, p)
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"model": b.Model, "price_per_gpu_hour": b.Price})
}

// faucetOn: the dev faucet exists only in dev mode with a faucet key; the
// page and the API both answer 404 otherwise.
func (s *Server) faucetOn() bool { return s.devMode && s.broker.HasFaucet() }
