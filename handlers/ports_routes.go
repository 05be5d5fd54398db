package handlers

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/web"
)

// The marketplace's side of forwarded ports: the buyer's redirect onto a
// forward's host, the API and the lease page's card, and the agent's
// tunnels.

// portOpen is GET /ports/:slug/open: the buyer's session mints a
// one-minute token and sends the browser to the forward's host with it.
func (s *Server) portOpen(c *gin.Context) {
	slug := c.Param("slug")
	f, err := s.store.PortForwardBySlug(c.Request.Context(), slug)
	if err == nil && f.UserID != currentUser(c).ID {
		err = highway.Errorf(highway.ENOTFOUND, "No such forwarded port.")
	}
	if err == nil && f.ClosedAt != nil {
		err = highway.Errorf(highway.ECONFLICT, "This forward was closed (%s).", f.CloseReason)
	}
	if err == nil && s.portsDomain == "" {
		err = highway.Errorf(highway.ECONFLICT, "This marketplace serves no ports domain.")
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	next := c.Query("next")
	if safeNext(next) != next {
		next = "/"
	}
	c.Header("Referrer-Policy", "no-referrer")
	c.Header("Cache-Control", "no-store")
	c.Redirect(http.StatusSeeOther, s.PortURL(slug)+portLoginPath+"?t="+url.QueryEscape(s.portToken("login", slug, currentUser(c).ID, portLoginTTL))+
		"&next="+url.QueryEscape(next))
}

// portJSON is a forward as the API shows it.
type portJSON struct {
	Port        int        `json:"port"`
	URL         string     `json:"url"`
	CreatedAt   time.Time  `json:"created_at"`
	ClosedAt    *time.Time `json:"closed_at,omitempty"`
	CloseReason string     `json:"close_reason,omitempty"`
}

func (s *Server) portJSONOf(f *models.PortForward) portJSON {
	return portJSON{Port: f.Port, URL: s.PortURL(f.Slug) + "/", CreatedAt: f.CreatedAt.UTC(), ClosedAt: f.ClosedAt, CloseReason: f.CloseReason}
}

// apiPorts: GET /api/v1/leases/:id/ports → the lease's forwards, newest
// first.
func (s *Server) apiPorts(c *gin.Context) {
	fs, err := s.broker.Forwards(c.Request.Context(), currentUser(c).ID, c.Param("id"))
	if err != nil {
		s.fail(c, err)
		return
	}
	out := make([]portJSON, 0, len(fs))
	for i := range fs {
		out = append(out, s.portJSONOf(&fs[i]))
	}
	c.JSON(http.StatusOK, gin.H{"ports": out})
}

// apiOpenPort: POST /api/v1/leases/:id/ports {"port": 8888} → 201.
func (s *Server) apiOpenPort(c *gin.Context) {
	var req struct {
		Port int `json:"port"`
	}
	if err := bindJSON(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	f, err := s.openPort(c, req.Port)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"port": s.portJSONOf(f)})
}

func (s *Server) openPort(c *gin.Context, port int) (*models.PortForward, error) {
	if s.portsDomain == "" {
		// Whose lease it is comes first: nobody else learns anything.
		if _, err := s.broker.Forwards(c.Request.Context(), currentUser(c).ID, c.Param("id")); err != nil {
			return nil, err
		}
		return nil, highway.Errorf(highway.ECONFLICT, "This marketplace serves no ports domain (HIGHWAY_PORTS_DOMAIN).")
	}
	return s.broker.OpenForward(c.Request.Context(), currentUser(c).ID, c.Param("id"), port)
}

// apiClosePort: DELETE /api/v1/leases/:id/ports/:port.
func (s *Server) apiClosePort(c *gin.Context) {
	port := pathPort(c)
	if err := s.broker.CloseForward(c.Request.Context(), currentUser(c).ID, c.Param("id"), port); err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"closed": port})
}

// pathPort is the :port of a path; -1 when it is no number, which the
// broker refuses after checking whose lease it is.
func pathPort(c *gin.Context) int {
	p, err := strconv.Atoi(c.Param("port"))
	if err != nil {
		return -1
	}
	return p
}

// leasePortOpen is the lease page's form: POST /leases/:id/ports.
func (s *Server) leasePortOpen(c *gin.Context) {
	l, ok := s.buyerLease(c)
	if !ok {
		return
	}
	raw := strings.TrimSpace(c.PostForm("port"))
	port, err := strconv.Atoi(raw)
	if err != nil {
		err = &highway.Error{Code: highway.EINVALID, Field: "port", Message: "A port is a number from 1 to 65535."}
	} else {
		_, err = s.openPort(c, port)
	}
	if err != nil {
		if highway.ErrorCode(err) == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{port: raw, portErr: highway.ErrorMessage(err)})
		return
	}
	s.setFlash(c, "success", "Port "+strconv.Itoa(port)+" is forwarded.")
	c.Redirect(http.StatusSeeOther, "/leases/"+l.ID+"#ports")
}

// leasePortClose: POST /leases/:id/ports/:port/close.
func (s *Server) leasePortClose(c *gin.Context) {
	l, ok := s.buyerLease(c)
	if !ok {
		return
	}
	port := pathPort(c)
	if err := s.broker.CloseForward(c.Request.Context(), currentUser(c).ID, l.ID, port); err != nil {
		if highway.ErrorCode(err) == highway.EINTERNAL {
			s.fail(c, err)
			return
		}
		s.renderLease(c, statusOf(highway.ErrorCode(err)), l, leaseForms{portErr: highway.ErrorMessage(err)})
		return
	}
	s.setFlash(c, "success", "Port "+strconv.Itoa(port)+" is no longer forwarded.")
	c.Redirect(http.StatusSeeOther, "/leases/"+l.ID+"#ports")
}

// portRows are a lease's forwards as its page shows them.
func (s *Server) portRows(fs []models.PortForward) []web.PortRow {
	out := make([]web.PortRow, 0, len(fs))
	for _, f := range fs {
		r := web.PortRow{Port: f.Port, Slug: f.Slug, URL: s.PortURL(f.Slug) + "/", Opened: web.FormatTime(f.CreatedAt), Open: f.ClosedAt == nil, Reason: f.CloseReason}
		out = append(out, r)
	}
	return out
}

// tunnelReadLimit bounds one frame of a tunnel: the agent sends what one
// read of the workload's socket returned.
const tunnelReadLimit = 1 << 20

// agentTunnel is the agent's end of a forwarded port's connection: GET
// /api/agent/v1/tunnels/:session, signed (broker.DialForward owns it).
func (s *Server) agentTunnel(c *gin.Context) { s.agentDialBack(c, true, tunnelReadLimit) }
