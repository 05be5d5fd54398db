package handlers

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/highway-compute/highway"
)

// The market's change stream (Server-Sent Events) and the caps on how many
// streams one address and everyone may hold open.

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
	release, ok := s.streams.take(c.ClientIP())
	if !ok {
		s.fail(c, &highway.Error{Code: highway.ERATELIMITED, RetryAfter: 5,
			Message: "Too many live pages open from this address: close some and reload."})
		return
	}
	defer release()
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

// streamCaps bounds the live-page event streams: each holds a connection
// and a goroutine for up to sseMaxLife, so one address must not open
// thousands. A person has a few tabs open; a page whose stream is refused
// still works, it just stops updating by itself.
type streamCaps struct {
	perIP, total int
	mu           sync.Mutex
	open         map[string]int
	all          int
}

func newStreamCaps(perIP, total int) *streamCaps {
	return &streamCaps{perIP: perIP, total: total, open: map[string]int{}}
}

// take reserves a stream for ip; release gives it back.
func (sc *streamCaps) take(ip string) (release func(), ok bool) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.open[ip] >= sc.perIP || sc.all >= sc.total {
		return nil, false
	}
	sc.open[ip]++
	sc.all++
	return func() {
		sc.mu.Lock()
		defer sc.mu.Unlock()
		sc.all--
		if sc.open[ip]--; sc.open[ip] == 0 {
			delete(sc.open, ip)
		}
	}, true
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
