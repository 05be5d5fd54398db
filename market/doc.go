// Package market is Highway's matching engine: the order book of live GPU
// offers, the resting buyer orders, the reservations and leases that hold
// GPUs, and the live capacity registry fed by agent heartbeats.
//
// The package is pure and deterministic so that the marketplace can persist
// only the input log and rebuild the engine (or let anyone audit it) by
// replaying that log: no clock (every Command carries Now, unix
// milliseconds), no randomness, no floats (prices are int64 micro-units),
// and no result ever depends on map iteration order. One goroutine, the
// broker's single writer, calls Engine.Apply; the engine is not safe for
// concurrent use by design, because a lock-free single writer is both the
// fastest and the only deterministic option.
//
// The matching rule, with examples, is docs/matching.md; the reasoning sits
// next to the code in match.go. Keep the two in step.
package market
