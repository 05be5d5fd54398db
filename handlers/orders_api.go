package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// Orders through the API: place (idempotent), list by cursor, read, cancel.

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
	// Interruptible makes the order a bid for interruptible GPUs
	// (docs/matching.md): max_price_per_gpu_hour is the bid.
	Interruptible bool `json:"interruptible"`
}

// orderRequest checks an order body (API or form) and builds the broker's request.
func orderRequest(buyerID string, b orderBody) (broker.OrderRequest, error) {
	price, err := amount("max_price_per_gpu_hour", b.MaxPrice, b.Type == "rent_now") // rent now: the ask, or the floor of a bid
	if err != nil {
		return broker.OrderRequest{}, err
	}
	r := broker.OrderRequest{BuyerID: buyerID, Type: b.Type, OfferID: b.OfferID, Model: b.Model, MinVRAMGiB: b.MinVRAMGiB,
		Count: b.Count, MaxPrice: int64(price), Region: b.Region, MaxRTTms: b.MaxRTTms, Hours: b.Hours, LatencyFirst: b.LatencyFirst,
		Interruptible: b.Interruptible, Workload: b.Workload}
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
		"max_rtt_ms": o.MaxRTTms, "hours": o.Hours, "machine_id": o.MachineID, "interruptible": o.Interruptible,
		"created_at": o.CreatedAt.UTC().Format(time.RFC3339)}
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
	os, next, err := s.store.OrdersPage(c.Request.Context(), currentUser(c).ID, limit, c.Query("cursor"))
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]gin.H, len(os))
	for i := range os {
		out[i] = orderJSON(&os[i])
	}
	c.JSON(http.StatusOK, gin.H{"orders": out, "next_cursor": next})
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
