package handlers

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
)

// Disputes through the API: statements from both sides, the arbiter's
// resolution, suspending a provider.

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
		if err := s.broker.SuspendProvider(c.Request.Context(), c.Param("id"), suspend, b.Reason); err != nil {
			s.fail(c, err)
			return
		}
		c.JSON(http.StatusOK, gin.H{"provider_id": c.Param("id"), "suspended": suspend, "reason": strings.TrimSpace(b.Reason)})
	}
}
