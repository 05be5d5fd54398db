package market

import "slices"

// restKey orders resting orders: highest max price first (neg = -max
// price), then earliest placement (seq). It also carries the order's other
// constraints, so a sweep tests a resting order against a machine without
// touching the order itself (the model is the list's).
type restKey struct {
	neg     int64
	seq     uint64
	slot    uint32
	region  uint8
	count   uint8
	maxRTT  uint16
	minVRAM uint16
}

func restLess(a, b restKey) bool { return a.neg < b.neg || (a.neg == b.neg && a.seq < b.seq) }

// restList is one model's resting orders in priority order, in sorted
// chunks of restChunk to 2×restChunk keys (none empty): a sweep reads them
// in order, and an order that comes to rest or leaves shifts one chunk,
// not a list as long as the market's unserved demand (the peer benchmark's
// single book holds tens of thousands; as one slice, each move shifted
// all of them).
type restList struct {
	chunks [][]restKey
}

const restChunk = 128

// restPos is where k goes in the sorted chunk c.
func restPos(c []restKey, k restKey) int {
	lo, hi := 0, len(c)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if restLess(c[mid], k) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// chunkOf is the chunk k belongs in: the first whose last key is not
// before k, or the last chunk when k is after every key.
func (l *restList) chunkOf(k restKey) int {
	lo, hi := 0, len(l.chunks)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c := l.chunks[mid]
		if restLess(c[len(c)-1], k) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return min(lo, len(l.chunks)-1)
}

func (l *restList) insert(k restKey) {
	if len(l.chunks) == 0 {
		l.chunks = append(l.chunks, append(make([]restKey, 0, 2*restChunk+1), k))
		return
	}
	ci := l.chunkOf(k)
	c := l.chunks[ci]
	p := restPos(c, k)
	c = append(c, restKey{})
	copy(c[p+1:], c[p:])
	c[p] = k
	l.chunks[ci] = c
	if len(c) > 2*restChunk {
		right := make([]restKey, len(c)-restChunk, 2*restChunk+1)
		copy(right, c[restChunk:])
		l.chunks[ci] = c[:restChunk]
		l.chunks = slices.Insert(l.chunks, ci+1, right)
	}
}

func (l *restList) remove(k restKey) {
	if len(l.chunks) == 0 {
		panic("market: resting list out of step with orders")
	}
	ci := l.chunkOf(k)
	c := l.chunks[ci]
	p := restPos(c, k)
	if p == len(c) || c[p].seq != k.seq {
		panic("market: resting list out of step with orders")
	}
	copy(c[p:], c[p+1:])
	c = c[:len(c)-1]
	if len(c) == 0 {
		l.chunks = slices.Delete(l.chunks, ci, ci+1)
		return
	}
	l.chunks[ci] = c
}
