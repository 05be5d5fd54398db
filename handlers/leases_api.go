package handlers

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// Leases through the API: the books and epochs, logs, close.

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
		epochs[i] = gin.H{"n": e.N, "status": e.Status, "valid_nonces": e.ValidNonces, "required": e.Required, "amount": e.Amount, "tx_hash": e.TxHash, "height": e.Height, "reason": e.Reason}
	}
	gpus := []string{}
	if l.GPUUUIDs != "" {
		gpus = strings.Split(l.GPUUUIDs, ",")
	}
	var pull any // null until the agent reports a pull
	if l.PullTotal > 0 {
		pull = gin.H{"done_bytes": l.PullDone, "total_bytes": l.PullTotal, "cached": l.PullCached, "digest": l.ImageDigest}
	}
	var auto any // null while off, and for anyone but the buyer: it tells the buyer's balance
	if u := currentUser(c); l.AutoExtendHours > 0 && u != nil && u.ID == l.BuyerID {
		var will any
		ok, why, err := s.broker.AutoExtendOutlook(c.Request.Context(), l)
		if err != nil {
			// The chain or the wallet cannot be read now: the lease is
			// still shown, its outlook unknown.
			why = "The wallet's balance cannot be read now."
		} else {
			will = ok
		}
		auto = gin.H{"hours": l.AutoExtendHours, "floor": strconv.FormatInt(l.AutoExtendFloor, 10),
			"next_at": s.broker.AutoExtendAt(l).UTC().Format(time.RFC3339), "will_extend": will, "why_not": why, "last_attempt": l.AutoExtendNote}
	}
	var preemptAt any // null unless preempted: then when the workload stops and the lease closes
	if l.PreemptAt != nil {
		preemptAt = l.PreemptAt.UTC().Format(time.RFC3339Nano)
	}
	return gin.H{"id": l.ID, "chain_lease_id": l.ChainLeaseID, "image_pull": pull, "auto_extend": auto, "order_id": l.OrderID, "status": l.Status, "buyer_id": l.BuyerID,
		"interruptible": l.Interruptible, "preempt_at": preemptAt, "preempted_by": l.PreemptedBy,
		"provider_id": l.ProviderID, "machine_id": l.MachineID, "model": l.Model, "gpus": l.GPUs, "gpu_uuids": gpus,
		"price_per_gpu_hour": strconv.FormatInt(l.PricePerHour, 10), "price_per_epoch": l.PricePerEpoch, "epochs_total": l.EpochsTotal,
		"epochs": epochs, "escrow": gin.H{"remaining": l.Remaining, "pending": l.Pending, "paid": l.Paid, "refunded": l.Refunded,
			"frozen": l.Frozen, "fees": l.Fees}, "workload_status": l.WorkloadStatus, "create_tx": l.CreateTx,
		"close_reason": closeReason(l), "ends_at": l.EndsAt.UTC().Format(time.RFC3339), "created_at": l.CreatedAt.UTC().Format(time.RFC3339)}, nil
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

// apiExtendLease: POST /api/v1/leases/:id/extend {"hours": N}.
func (s *Server) apiExtendLease(c *gin.Context) {
	var b struct {
		Hours int64 `json:"hours"`
	}
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	l, err := s.broker.ExtendLease(c.Request.Context(), currentUser(c).ID, c.Param("id"), b.Hours)
	s.leaseResult(c, l, err)
}

// apiAutoExtend: PUT /api/v1/leases/:id/auto-extend {"hours": N, "floor":
// "uhwy"}; hours 0 turns it off.
func (s *Server) apiAutoExtend(c *gin.Context) {
	var b struct {
		Hours int64  `json:"hours"`
		Floor string `json:"floor"`
	}
	if err := bindJSON(c, &b); err != nil {
		s.fail(c, err)
		return
	}
	floor := highway.Amount(0)
	if b.Floor != "" {
		var ok bool
		if floor, ok = highway.ParseUhwy(b.Floor); !ok {
			s.fail(c, &highway.Error{Code: highway.EINVALID, Field: "floor", Message: "floor is a decimal string of uhwy, e.g. \"25000000\"."})
			return
		}
	}
	l, err := s.broker.SetAutoExtend(c.Request.Context(), currentUser(c).ID, c.Param("id"), b.Hours, floor)
	s.leaseResult(c, l, err)
}

func (s *Server) apiCloseLease(c *gin.Context) {
	l, err := s.broker.CloseLease(c.Request.Context(), currentUser(c).ID, c.Param("id"))
	s.leaseResult(c, l, err)
}

// leaseResult answers a lease action: the lease as it is now, or the
// action's error.
func (s *Server) leaseResult(c *gin.Context, l *models.Lease, err error) {
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

// closeReason is the chain's reason for a lease's close, except that a
// preempted lease, which the marketplace closes with the buyer's wallet,
// says so.
func closeReason(l *models.Lease) string {
	if l.PreemptAt != nil && l.CloseReason != "" {
		return "preempted"
	}
	return l.CloseReason
}
