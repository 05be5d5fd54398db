package protocol

import (
	"context"
	"sync"
	"time"
)

// NonceStore remembers the nonces of accepted requests until they can no
// longer pass the timestamp check, so a captured request cannot be replayed.
// The in-memory MemoryNonceStore suits one server process; replicas behind a
// load balancer need a shared implementation (a database table with a unique
// key and an expiry, or Redis SET NX EX).
type NonceStore interface {
	// Use records key (agent id + nonce) as used until expires. It returns
	// an error wrapping ErrReplay when key is already recorded, ErrBusy when
	// the store cannot take more, or another error on storage failure.
	Use(ctx context.Context, key string, now, expires time.Time) error
}

// MemoryNonceStore is a bounded, time-windowed NonceStore. Entries expire in
// insertion order (the Verifier gives every entry the same lifetime, so the
// oldest entry always expires first) and are pruned on each call.
//
// When full of live entries it refuses new ones with ErrBusy rather than
// evicting: evicting a live nonce would reopen a replay window, and a
// refused request is simply retried by the agent.
type MemoryNonceStore struct {
	mu    sync.Mutex
	cap   int
	seen  map[string]struct{}
	queue []nonceEntry // FIFO ring
	head  int
	n     int
}

type nonceEntry struct {
	key     string
	expires time.Time
}

// NewMemoryNonceStore returns a store holding at most capacity live nonces.
// With the default 60 s skew an entry lives 120 s, so 1<<20 entries allow
// about 8,700 signed requests a second, sustained.
func NewMemoryNonceStore(capacity int) *MemoryNonceStore {
	if capacity < 1 {
		capacity = 1
	}
	return &MemoryNonceStore{cap: capacity, seen: make(map[string]struct{}), queue: make([]nonceEntry, capacity)}
}

// Use implements NonceStore.
func (m *MemoryNonceStore) Use(_ context.Context, key string, now, expires time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for m.n > 0 && !m.queue[m.head].expires.After(now) {
		delete(m.seen, m.queue[m.head].key)
		m.queue[m.head] = nonceEntry{}
		m.head = (m.head + 1) % m.cap
		m.n--
	}
	if _, dup := m.seen[key]; dup {
		return errf(ErrReplay, HeaderNonce, "nonce already used")
	}
	if m.n == m.cap {
		return errf(ErrBusy, "", "%d live nonces", m.cap)
	}
	m.seen[key] = struct{}{}
	m.queue[(m.head+m.n)%m.cap] = nonceEntry{key: key, expires: expires}
	m.n++
	return nil
}

// Len returns the number of live entries (for metrics and tests).
func (m *MemoryNonceStore) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.n
}
