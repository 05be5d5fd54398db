package agent

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/highway-compute/highway/protocol"
)

// maxBatchBytes keeps a log batch well under the server's body limit
// (protocol.DefaultMaxBody) once JSON-encoded.
const maxBatchBytes = 128 << 10

// logBuffer holds workload output until the marketplace has acknowledged
// it. When the marketplace is away for long it keeps the newest lines and
// drops the oldest (the gap shows in the sequence numbers), so a chatty
// workload cannot exhaust the provider's memory.
type logBuffer struct {
	mu      sync.Mutex
	max     int
	n       int
	leases  map[string][]protocol.LogLine
	dropped uint64
	notify  chan struct{}
}

func newLogBuffer(maxLines int) *logBuffer {
	return &logBuffer{max: maxLines, leases: make(map[string][]protocol.LogLine), notify: make(chan struct{}, 1)}
}

// add is the runner's LogSink.
func (b *logBuffer) add(leaseID string, line protocol.LogLine) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(line.Text) > protocol.MaxLogLineBytes {
		line.Text = line.Text[:protocol.MaxLogLineBytes]
	}
	for b.n >= b.max {
		// Drop from the lease with the most buffered lines.
		var victim string
		for id, ls := range b.leases {
			if victim == "" || len(ls) > len(b.leases[victim]) {
				victim = id
			}
		}
		b.leases[victim] = b.leases[victim][1:]
		b.n--
		b.dropped++
	}
	// Keep each lease's lines in sequence order whatever order they come
	// in: a batch must increase, or the marketplace refuses it whole.
	ls := append(b.leases[leaseID], line)
	for i := len(ls) - 1; i > 0 && ls[i-1].Seq > ls[i].Seq; i-- {
		ls[i-1], ls[i] = ls[i], ls[i-1]
	}
	b.leases[leaseID] = ls
	b.n++
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

// batches returns up to one batch per lease, without removing anything.
func (b *logBuffer) batches() []protocol.LogBatch {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []protocol.LogBatch
	for id, ls := range b.leases {
		if len(ls) == 0 {
			continue
		}
		size, n := 0, 0
		for n < len(ls) && n < protocol.MaxLogLines && size < maxBatchBytes {
			size += len(ls[n].Text) + 64
			n++
		}
		out = append(out, protocol.LogBatch{LeaseID: id, Lines: append([]protocol.LogLine(nil), ls[:n]...)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LeaseID < out[j].LeaseID })
	return out
}

// ack removes the lines up to seq of a lease once the server has them.
func (b *logBuffer) ack(leaseID string, seq uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ls := b.leases[leaseID]
	i := 0
	for i < len(ls) && ls[i].Seq <= seq {
		i++
	}
	b.n -= i
	if i == len(ls) {
		delete(b.leases, leaseID)
		return
	}
	b.leases[leaseID] = ls[i:]
}

func (b *logBuffer) takeDropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.dropped
	b.dropped = 0
	return d
}

// flushLogs sends every buffered batch once; it stops at the first error.
func (a *Agent) flushLogs(ctx context.Context) error {
	for {
		batches := a.logs.batches()
		if len(batches) == 0 {
			return nil
		}
		for _, batch := range batches {
			if err := a.cfg.API.SendLogs(ctx, batch); err != nil {
				return err
			}
			a.logs.ack(batch.LeaseID, batch.Lines[len(batch.Lines)-1].Seq)
		}
	}
}

func (a *Agent) logLoop(ctx context.Context) {
	r := a.retry("shipping logs")
	tick := time.NewTicker(a.cfg.LogFlush)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-a.logs.notify:
			// Batch a little: wait for the tick unless the buffer is big.
			if !sleep(ctx, min(a.cfg.LogFlush, 200*time.Millisecond)) {
				return
			}
		}
		if d := a.logs.takeDropped(); d > 0 && a.cfg.Metrics != nil {
			a.cfg.Metrics.LogLinesDropped.Add(float64(d))
		}
		if err := a.flushLogs(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			if !sleep(ctx, r.failed(ctx, err)) {
				return
			}
			continue
		}
		r.ok()
	}
}
