package handlers

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// healthz says the process is alive; it never touches dependencies, so a
// slow database does not get a healthy process restarted.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, s.withRole(gin.H{"status": "ok"}))
}

// withRole adds the replica's role (leader; a standby answers these
// routes itself, cmd/highway/replica.go).
func (s *Server) withRole(h gin.H) gin.H {
	if s.role != "" {
		h["role"] = s.role
	}
	return h
}

// readyz says whether this replica can serve: the database must answer
// within two seconds. Load balancers route around a 503.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readyz: database unreachable", "err", err)
		c.JSON(http.StatusServiceUnavailable, s.withRole(gin.H{"status": "unavailable", "checks": gin.H{"database": "unreachable"}}))
		return
	}
	c.JSON(http.StatusOK, s.withRole(gin.H{"status": "ok", "checks": gin.H{"database": "ok"}}))
}
