package market

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strings"
)

// StateDigest is a SHA-256 of the engine's whole logical state (machines,
// providers, orders, reservations, leases, time) in a canonical order: by
// id, never by slot or map order. Two engines that applied the same log
// have the same digest; tests use it to prove replay is exact and that a
// failed command changed nothing. It sorts every id, so it is for tests
// and audits, not the hot path.
func (e *Engine) StateDigest() [32]byte {
	var b []byte
	u := func(v uint64) { b = binary.BigEndian.AppendUint64(b, v) }
	str := func(s string) { u(uint64(len(s))); b = append(b, s...) }
	flag := func(v bool) {
		if v {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
	}
	u(uint64(e.now))
	u(e.seq)
	var slots []uint32
	for s := 0; s < e.nMachines; s++ {
		if e.mach(uint32(s)).alive {
			slots = append(slots, uint32(s))
		}
	}
	slices.SortFunc(slots, func(a, b uint32) int { return strings.Compare(e.mach(a).id, e.mach(b).id) })
	for _, s := range slots {
		m := e.mach(s)
		str(m.id)
		str(e.providers[m.provider].id)
		u(uint64(m.model))
		u(uint64(m.region))
		u(uint64(m.gpus))
		u(uint64(m.vram))
		u(uint64(m.rel))
		u(uint64(m.price))
		u(uint64(m.listedAt))
		u(uint64(m.lastBeat))
		u(m.free)
		u(m.held)
		for _, r := range m.rtt[:e.nR] {
			u(uint64(r))
		}
		flag(m.verified)
		flag(m.healthy)
		flag(m.online)
		flag(m.delisted)
		flag(m.indexed)
		u(uint64(m.spotFloor))
		u(uint64(m.notice))
		u(m.spot)
	}
	ps := slices.Clone(e.providers)
	slices.SortFunc(ps, func(a, b provider) int { return strings.Compare(a.id, b.id) })
	for _, p := range ps {
		str(p.id)
		flag(p.suspended)
	}
	slots = slots[:0]
	for s := range uint32(e.nOrders) {
		if e.ord(s).alive {
			slots = append(slots, s)
		}
	}
	slices.SortFunc(slots, func(a, b uint32) int { return strings.Compare(e.ord(a).id, e.ord(b).id) })
	for _, s := range slots {
		o := e.ord(s)
		str(o.id)
		str(o.buyer)
		u(uint64(o.typ))
		u(uint64(o.state))
		flag(o.latencyFirst)
		u(uint64(o.region))
		u(uint64(o.model))
		flag(o.spot)
		for _, v := range []int64{o.count, o.minVRAM, o.maxPrice, o.maxRTT, o.hours, o.expiresAt, int64(o.seq), int64(o.mask), o.price, o.resExpiry, o.startAt, o.notice} {
			u(uint64(v))
		}
		if o.state != stResting {
			str(e.mach(o.machine).id)
		}
	}
	return sha256.Sum256(b)
}
