package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/highway-compute/highway/provider-agent/client"
)

// retrier counts one loop's consecutive failures and says how long to
// wait before the next try. The loops that talk to the marketplace
// (heartbeats, the assignment poll, log shipping) share it, so they back
// off, honour a server's Retry-After and log a failure alike.
type retrier struct {
	what    string
	backoff client.Backoff
	log     *slog.Logger
	attempt int
}

func (a *Agent) retry(what string) *retrier {
	return &retrier{what: what, backoff: a.cfg.Backoff, log: a.log}
}

// failed logs err with attrs and returns the wait before the next try. A
// refusal (4xx) is logged as an error: retrying will not fix it unless an
// operator does something server-side, so it is said louder than an
// outage, but the loop keeps trying.
func (r *retrier) failed(ctx context.Context, err error, attrs ...any) time.Duration {
	wait := r.backoff.DelayFor(r.attempt, err)
	r.attempt++
	level := slog.LevelWarn
	if !client.Retryable(err) {
		level = slog.LevelError
	}
	r.log.Log(ctx, level, r.what+" failed", append(attrs, "attempt", r.attempt, "retry_in", wait.Round(time.Millisecond), "err", err)...)
	return wait
}

// ok resets the count after a success: the next failure starts over.
func (r *retrier) ok() { r.attempt = 0 }
