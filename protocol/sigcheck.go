package protocol

import (
	"crypto/ed25519"
	"crypto/rand"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/oasisprotocol/curve25519-voi/curve"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Signature checks on the server use curve25519-voi rather than
// crypto/ed25519, for two reasons measured in BenchmarkAgentHeartbeats:
// an agent's key expanded once (a precomputed table, ~1.5 KiB) verifies in
// ~24 µs instead of ~42 µs, and signatures that arrive together verify as
// one batch (~15 µs each at 8–16).
//
// The acceptance rule is voi's default, RFC 8032 with the cofactored
// equation, which differs from crypto/ed25519 (cofactorless) only for
// signatures that involve small-order points. Such a signature can only be
// made on purpose by the key's holder, so for an agent authenticating its
// own requests the two rules accept the same honest traffic; a batch and a
// single check then agree (the batch equation is the cofactored one), and
// keys that are small-order or non-canonical, under which anyone could
// forge, are refused at enrollment (CheckPublicKey).

// CheckPublicKey refuses an ed25519 public key that is not a canonical
// encoding of a curve point of large order. Random keys always pass; a key
// of small order would let anyone forge its signatures.
func CheckPublicKey(key []byte) error {
	if len(key) != ed25519.PublicKeySize {
		return fieldErr("public_key", "must be 32 bytes, got %d", len(key))
	}
	var c curve.CompressedEdwardsY
	if _, err := c.SetBytes(key); err != nil {
		return fieldErr("public_key", "not a curve point")
	}
	var p curve.EdwardsPoint
	if _, err := p.SetCompressedY(&c); err != nil {
		return fieldErr("public_key", "not a curve point")
	}
	if !c.IsCanonicalVartime() {
		return fieldErr("public_key", "not a canonical point encoding")
	}
	if p.IsSmallOrder() {
		return fieldErr("public_key", "a small-order point (anyone could sign for it)")
	}
	return nil
}

// expandedKeys caches agents' expanded keys by their 32 bytes. It is
// bounded: when full it starts over, which costs each agent one expansion
// (~20 µs) again, instead of growing with every key ever seen.
type expandedKeys struct {
	mu   sync.RWMutex
	keys map[[32]byte]*voi.ExpandedPublicKey
}

// maxExpandedKeys bounds the cache at ~100 MB.
const maxExpandedKeys = 1 << 16

func (c *expandedKeys) get(key ed25519.PublicKey) (*voi.ExpandedPublicKey, bool) {
	var k [32]byte
	if copy(k[:], key) != len(k) {
		return nil, false
	}
	c.mu.RLock()
	x := c.keys[k]
	c.mu.RUnlock()
	if x != nil {
		return x, true
	}
	x, err := voi.NewExpandedPublicKey(voi.PublicKey(key))
	if err != nil {
		return nil, false
	}
	c.mu.Lock()
	if c.keys == nil || len(c.keys) >= maxExpandedKeys {
		c.keys = make(map[[32]byte]*voi.ExpandedPublicKey)
	}
	c.keys[k] = x
	c.mu.Unlock()
	return x, true
}

// SigBatcher verifies signatures from concurrent requests in batches.
// Nothing waits for a batch to fill: a worker takes the first signature
// queued and whatever else is queued by then (up to MaxBatch), so an idle
// server checks each request alone at once, and a busy one, whose requests
// queue while the workers are occupied, gets larger batches exactly when
// the saving matters. A batch that fails is checked one by one, so a bad
// signature rejects only its own request.
type SigBatcher struct {
	queue chan *sigJob
	max   int
	stop  chan struct{}
	once  sync.Once

	// Counters for the benchmark and metrics.
	batches, batched, singles, fallbacks atomic.Int64
}

// DefaultMaxBatch is where voi's batch gain flattens (64: ~13.5 µs a
// signature, 16: ~14.6, 8: ~16.6, one alone ~24).
const DefaultMaxBatch = 64

type sigJob struct {
	key      *voi.ExpandedPublicKey
	msg, sig []byte
	ok       bool
	done     chan struct{}
}

var sigJobs = sync.Pool{New: func() any { return &sigJob{done: make(chan struct{}, 1)} }}

// NewSigBatcher starts workers that batch up to maxBatch signatures
// (DefaultMaxBatch when 0). Close stops them.
//
// workers 0 means a quarter of GOMAXPROCS, at least one. A worker that is
// parked when a request arrives gets that request handed over alone, so
// with a worker per core some worker is nearly always parked and batches
// never form (measured: none in 2 400 signatures from 16 senders on two
// cores); a quarter of the cores is ample, since a batched signature costs
// a worker ~15 µs and the rest of a heartbeat ~100 µs elsewhere.
func NewSigBatcher(workers, maxBatch int) *SigBatcher {
	if workers <= 0 {
		workers = max(1, runtime.GOMAXPROCS(0)/4)
	}
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatch
	}
	b := &SigBatcher{queue: make(chan *sigJob, 4*maxBatch*workers), max: maxBatch, stop: make(chan struct{})}
	for range workers {
		go b.work()
	}
	return b
}

var (
	sharedOnce    sync.Once
	sharedBatcher *SigBatcher
)

// SharedSigBatcher is the process's batcher, started on first use and
// never stopped: one process serves the agent API, and its requests batch
// best when they all queue in one place.
func SharedSigBatcher() *SigBatcher {
	sharedOnce.Do(func() { sharedBatcher = NewSigBatcher(0, 0) })
	return sharedBatcher
}

// Close stops the workers; a Verify after Close checks on its caller's
// goroutine.
func (b *SigBatcher) Close() { b.once.Do(func() { close(b.stop) }) }

// Verify reports whether sig is key's signature of msg, checked in a batch
// with whatever other signatures are waiting.
func (b *SigBatcher) Verify(key *voi.ExpandedPublicKey, msg, sig []byte) bool {
	select {
	case <-b.stop:
		return voi.VerifyExpanded(key, msg, sig)
	default:
	}
	j := sigJobs.Get().(*sigJob)
	j.key, j.msg, j.sig = key, msg, sig
	select {
	case b.queue <- j:
	case <-b.stop:
		j.key, j.msg, j.sig = nil, nil, nil
		sigJobs.Put(j)
		return voi.VerifyExpanded(key, msg, sig)
	}
	select {
	case <-j.done:
		ok := j.ok
		j.key, j.msg, j.sig, j.ok = nil, nil, nil, false
		sigJobs.Put(j)
		return ok
	case <-b.stop:
		// The workers may have stopped with j queued: check here, and
		// leave j to the collector (a worker may still be writing it).
		return voi.VerifyExpanded(key, msg, sig)
	}
}

func (b *SigBatcher) work() {
	batch := make([]*sigJob, 0, b.max)
	bv := voi.NewBatchVerifierWithCapacity(b.max)
	for {
		select {
		case <-b.stop:
			return
		case j := <-b.queue:
			batch = append(batch[:0], j)
		}
		// A request handed straight to a parked worker would be checked
		// alone; yielding once lets the handlers already runnable on this
		// core queue theirs first. On an idle server nothing is runnable
		// and this returns at once.
		runtime.Gosched()
	fill:
		for len(batch) < b.max {
			select {
			case j := <-b.queue:
				batch = append(batch, j)
			default:
				break fill
			}
		}
		b.check(bv, batch)
		for _, j := range batch {
			j.done <- struct{}{}
		}
		clear(batch)
	}
}

// check sets ok on every job: one batch equation when there are several
// (its random coefficients from crypto/rand, so a forger cannot make bad
// signatures cancel out), each alone when there is one or the batch fails.
func (b *SigBatcher) check(bv *voi.BatchVerifier, batch []*sigJob) {
	if len(batch) > 1 {
		bv.Reset()
		for _, j := range batch {
			bv.AddExpanded(j.key, j.msg, j.sig)
		}
		b.batches.Add(1)
		b.batched.Add(int64(len(batch)))
		if bv.VerifyBatchOnly(rand.Reader) {
			for _, j := range batch {
				j.ok = true
			}
			return
		}
		b.fallbacks.Add(1)
	} else {
		b.singles.Add(1)
	}
	for _, j := range batch {
		j.ok = voi.VerifyExpanded(j.key, j.msg, j.sig)
	}
}

// SigStats is what a SigBatcher has done: batches checked and the
// signatures in them, signatures checked alone, batches that failed and
// were checked one by one.
type SigStats struct{ Batches, Batched, Singles, Fallbacks int64 }

// Stats returns the counters so far.
func (b *SigBatcher) Stats() SigStats {
	return SigStats{b.batches.Load(), b.batched.Load(), b.singles.Load(), b.fallbacks.Load()}
}
