package handlers

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/protocol"
)

// AgentConfig tunes the agent API.
type AgentConfig struct {
	// HeartbeatInterval is what agents are told to use (default 10 s).
	HeartbeatInterval time.Duration
	// OfflineMisses is how many intervals without a beat make a machine
	// offline (default 3; at least 2, so one lost beat never delists it).
	OfflineMisses int
	// Regions are the latency probe endpoints agents measure.
	Regions []protocol.Region
	// MaxPoll caps an assignments long-poll (default 25 s).
	MaxPoll time.Duration
	// RequestsPerMinute is each agent's request budget (default 1200, or
	// 30 a heartbeat interval when that is more).
	RequestsPerMinute int
}

func (c *AgentConfig) defaults() {
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 10 * time.Second
	}
	if c.OfflineMisses < 2 {
		c.OfflineMisses = 3
	}
	if c.MaxPoll <= 0 {
		c.MaxPoll = 25 * time.Second
	}
	if c.RequestsPerMinute <= 0 {
		// Room for polls, logs and catch-up bursts on top of the beats,
		// however short the configured interval (tests and dev use short ones).
		c.RequestsPerMinute = max(1200, int(30*time.Minute/c.HeartbeatInterval))
	}
}

// agentAllow applies the per-agent request budget, counted only for
// requests whose signature verified (an attacker cannot spend another
// agent's budget). A well-behaved agent sends a handful of requests a
// minute; the limit leaves room for short intervals and catch-up bursts.
func (s *Server) agentAllow(c *gin.Context, agentID string) bool {
	ok, retry := s.agentLimit.Allow(agentID, s.now())
	if !ok {
		s.fail(c, &highway.Error{Code: highway.ERATELIMITED, RetryAfter: int(retry.Seconds()) + 1,
			Message: "Too many requests from this agent; slow down."})
	}
	return ok
}

// agentFail answers an agent-API error: errors the protocol knows through
// its own mapping (with the specific reason agents log), anything else
// through the one error mapping of the marketplace.
func (s *Server) agentFail(c *gin.Context, err error) {
	status, body := protocol.Describe(err)
	if status == http.StatusInternalServerError {
		s.fail(c, err) // not a protocol error: a domain or internal error
		return
	}
	c.AbortWithStatusJSON(status, body)
}

// agentRegister trades a one-time enrollment token for an agent identity:
// the agent's public key is stored, a machine created.
func (s *Server) agentRegister(c *gin.Context) {
	if ok, retry := s.agentRegisterLimit.Allow("ip:"+c.ClientIP(), s.now()); !ok {
		s.fail(c, &highway.Error{Code: highway.ERATELIMITED, RetryAfter: int(retry.Seconds()) + 1, Message: "Too many registrations from this address."})
		return
	}
	body, err := io.ReadAll(io.LimitReader(c.Request.Body, protocol.DefaultMaxBody+1))
	if err != nil {
		s.agentFail(c, protocol.ErrMalformed)
		return
	}
	req, err := protocol.DecodeRegisterRequest(body)
	if err != nil {
		s.agentFail(c, err)
		return
	}
	a, m, err := s.broker.RegisterAgent(c.Request.Context(), req)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, protocol.RegisterResponse{
		AgentID: a.ID, MachineID: m.ID, HeartbeatIntervalS: int(s.agentCfg.HeartbeatInterval / time.Second),
		Regions: s.agentCfg.Regions,
	})
}

// agentHeartbeat applies a signed heartbeat: GPUs, free/used, RTTs
// (broker.Heartbeat checks and maps it).
func (s *Server) agentHeartbeat(c *gin.Context) {
	vr, hb, err := s.agentVerifier.VerifyHeartbeat(c.Request)
	if err != nil {
		s.agentFail(c, err)
		return
	}
	agentID := vr.AgentID
	vr.Release() // hb holds copies: the body is done with
	if !s.agentAllow(c, agentID) {
		return
	}
	if err := s.broker.Heartbeat(c.Request.Context(), agentID, &hb); err != nil {
		s.agentFail(c, err)
		return
	}
	// protocol.HeartbeatResponse with only server_time set, written by
	// hand: encoding it through reflection was a twentieth of a beat.
	var buf [40]byte
	body := strconv.AppendInt(append(buf[:0], `{"server_time":`...), s.now().UnixMilli(), 10)
	c.Data(http.StatusOK, "application/json; charset=utf-8", append(body, '}'))
}

// agentAssignments is the agent's long-poll for work: assignments after
// ?after= and quote requests, waiting up to ?wait= seconds for some.
func (s *Server) agentAssignments(c *gin.Context) {
	vr, ok := s.verifyAgent(c)
	if !ok {
		return
	}
	wait := s.agentCfg.MaxPoll
	if w, err := strconv.Atoi(c.Query("wait")); err == nil && w >= 0 && time.Duration(w)*time.Second < wait {
		wait = time.Duration(w) * time.Second
	}
	after, _ := strconv.ParseUint(c.Query("after"), 10, 64)
	resp, err := s.broker.Poll(c.Request.Context(), vr.AgentID, after, wait)
	if err != nil {
		if c.Request.Context().Err() != nil {
			return // the agent hung up
		}
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, resp)
}

// verifyAgent checks a signed agent request and the agent's request
// budget; on failure it has answered and returns false.
func (s *Server) verifyAgent(c *gin.Context) (*protocol.Verified, bool) {
	vr, err := s.agentVerifier.Verify(c.Request)
	if err != nil {
		s.agentFail(c, err)
		return nil, false
	}
	return vr, s.agentAllow(c, vr.AgentID)
}

// agentPost serves a signed agent POST whose body decodes to T and that
// the broker applies for the agent: workload logs, quote answers and
// verification proofs. It answers 204, or the decoding or broker error.
func agentPost[T any](s *Server, decode func([]byte) (T, error), apply func(context.Context, string, T) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		vr, ok := s.verifyAgent(c)
		if !ok {
			return
		}
		v, err := decode(vr.Body)
		if err != nil {
			s.agentFail(c, err)
			return
		}
		if err := apply(c.Request.Context(), vr.AgentID, v); err != nil {
			s.fail(c, err)
			return
		}
		c.Status(http.StatusNoContent)
	}
}
