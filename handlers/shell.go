package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/broker"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/web"
)

// Shells (broker/shell.go): the buyer's WebSocket, from the lease page's
// terminal or the CLI, and the agent's, dialled back; this relays between
// them.

// shellReadLimit bounds one frame either way: a paste or a burst of
// output, never a file.
const shellReadLimit = 64 << 10

// shellSize reads ?cols=&rows= (default 80×24).
func shellSize(c *gin.Context) protocol.ShellSize {
	size := protocol.ShellSize{Cols: 80, Rows: 24}
	if v, err := strconv.ParseUint(c.Query("cols"), 10, 16); err == nil {
		size.Cols = uint16(v)
	}
	if v, err := strconv.ParseUint(c.Query("rows"), 10, 16); err == nil {
		size.Rows = uint16(v)
	}
	return size
}

// buyerShell is GET /leases/:id/shell/ws (session) and GET
// /api/v1/leases/:id/shell (API key): a WebSocket into the workload. The
// checks answer in HTTP before the upgrade; a cross-site page cannot open
// one (the upgrade checks Origin against Host).
func (s *Server) buyerShell(c *gin.Context) {
	ctx := c.Request.Context()
	// A browser always names the page it comes from: one on another site
	// is refused before anything happens (the upgrade would refuse it too,
	// but only after the agent was asked to dial back).
	if o := c.GetHeader("Origin"); o != "" {
		if u, err := url.Parse(o); err != nil || !strings.EqualFold(u.Host, c.Request.Host) {
			s.fail(c, &highway.Error{Code: highway.EFORBIDDEN, Message: "A shell opens only from this marketplace's own pages."})
			return
		}
	}
	sess, err := s.broker.OpenShell(ctx, currentUser(c).ID, c.Param("id"), shellSize(c))
	if err != nil {
		s.fail(c, err)
		return
	}
	conn, err := websocket.Accept(c.Writer, c.Request, nil)
	if err != nil {
		s.broker.EndShell(ctx, sess, 0, 0, "the browser's upgrade failed")
		return
	}
	defer func() { _ = conn.CloseNow() }()
	conn.SetReadLimit(shellReadLimit)
	var agent *websocket.Conn
	select {
	case agent = <-sess.Agent:
	case <-time.After(broker.ShellDialBack):
		s.broker.EndShell(ctx, sess, 0, 0, "the provider's agent did not answer")
		_ = conn.Close(websocket.StatusTryAgainLater, "the provider's agent did not answer; try again")
		return
	case <-sess.Done:
		s.broker.EndShell(ctx, sess, 0, 0, "the lease ended")
		_ = conn.Close(websocket.StatusNormalClosure, "the lease ended")
		return
	case <-ctx.Done():
		s.broker.EndShell(ctx, sess, 0, 0, "the buyer left")
		return
	}
	defer func() { _ = agent.CloseNow() }()
	in, out, reason := relay(context.WithoutCancel(ctx), sess, conn, agent)
	s.broker.EndShell(ctx, sess, in, out, reason)
}

// agentShell is the agent's end: GET /api/agent/v1/shells/:session, signed.
func (s *Server) agentShell(c *gin.Context) { s.agentDialBack(c, false, shellReadLimit) }

// agentDialBack takes the socket of an agent dialling back for a shell
// or a tunnel (which one the route says) and holds it until the session
// ends; the buyer's side owns it meanwhile.
func (s *Server) agentDialBack(c *gin.Context, tunnel bool, readLimit int64) {
	vr, ok := s.verifyAgent(c)
	if !ok {
		return
	}
	sess, err := s.broker.ClaimShell(vr.AgentID, c.Param("session"), tunnel)
	if err != nil {
		s.agentFail(c, err)
		return
	}
	conn, err := websocket.Accept(c.Writer, c.Request, nil)
	if err != nil {
		return
	}
	conn.SetReadLimit(readLimit)
	sess.Agent <- conn // buffered: the buyer's side takes it, or has left
	<-sess.Done
	_ = conn.CloseNow()
}

// relay copies frames both ways until either side closes or the session
// ends (the lease did), and returns the bytes each way and why it ended.
// From the buyer only terminal bytes and valid resizes pass. It ends a
// session by closing both sockets with the reason (a cancelled read would
// drop a socket without one).
func relay(ctx context.Context, sess *broker.ShellSession, buyer, agent *websocket.Conn) (in, out int64, reason string) {
	type result struct {
		n          int64
		err        error
		fromBuyer  bool // which pipe: the buyer's keystrokes, or the terminal's output
		buyerEnded bool // the buyer's socket is the one that failed or closed
	}
	done := make(chan result, 2)
	pipe := func(from, to *websocket.Conn, fromBuyer bool) {
		var n int64
		for {
			typ, data, err := from.Read(ctx)
			if err != nil {
				done <- result{n, err, fromBuyer, fromBuyer}
				return
			}
			if typ == websocket.MessageText && fromBuyer {
				if c, err := protocol.DecodeShellControl(data); err != nil || c.Resize == nil {
					continue // only resizes go to the agent
				}
			}
			if typ == websocket.MessageBinary {
				n += int64(len(data))
			}
			if err := to.Write(ctx, typ, data); err != nil {
				done <- result{n, err, fromBuyer, !fromBuyer}
				return
			}
		}
	}
	go pipe(buyer, agent, true)
	go pipe(agent, buyer, false)
	var results []result
	select {
	case r := <-done:
		results = append(results, r)
	case <-sess.Done:
	}
	switch {
	case sessEnded(sess):
		reason = "the lease ended"
	case results[0].buyerEnded:
		reason = "closed by the buyer"
	case websocket.CloseStatus(results[0].err) == websocket.StatusNormalClosure:
		reason = "the shell exited"
	default:
		reason = "the provider's agent went away"
	}
	go func() { _ = buyer.Close(websocket.StatusNormalClosure, reason) }()
	go func() { _ = agent.Close(websocket.StatusNormalClosure, reason) }()
	for len(results) < 2 {
		results = append(results, <-done)
	}
	for _, r := range results {
		if r.fromBuyer {
			in = r.n
		} else {
			out = r.n
		}
	}
	return in, out, reason
}

func sessEnded(s *broker.ShellSession) bool {
	select {
	case <-s.Done:
		return true
	default:
		return false
	}
}

// leaseShellPage is GET /leases/:id/shell: the terminal. Its own policy
// lets styles be inline: xterm.js sizes and colours the terminal with
// <style> elements it writes; scripts stay same-origin only.
func (s *Server) leaseShellPage(c *gin.Context) {
	l, err := s.store.LeaseByID(c.Request.Context(), c.Param("id"))
	if err != nil || l.BuyerID != currentUser(c).ID {
		s.fail(c, highway.Errorf(highway.ENOTFOUND, "Lease not found."))
		return
	}
	c.Header("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "+
		"connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
	s.render(c, http.StatusOK, "Shell", web.ShellPage(s.page(c, "Shell"), web.ShellView{LeaseID: l.ID, Model: l.Model, GPUs: l.GPUs,
		Status: l.Status, Workload: l.WorkloadStatus}))
}

// shellRows is a lease's session log as its page shows it.
func shellRows(ss []models.ShellSession, buyerID string) []web.ShellRow {
	out := make([]web.ShellRow, len(ss))
	for i, s := range ss {
		r := web.ShellRow{Who: s.UserID, Started: web.FormatTime(s.StartedAt), Duration: "open", In: s.BytesIn, Out: s.BytesOut, Ended: s.EndReason}
		if s.UserID == buyerID {
			r.Who = "buyer"
		}
		if s.EndedAt != nil {
			r.Duration = s.EndedAt.Sub(s.StartedAt).Round(time.Second).String()
		}
		out[i] = r
	}
	return out
}
