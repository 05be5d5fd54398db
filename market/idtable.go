package market

// idTable maps caller-chosen ids to slots. It replaces map[string]uint32
// on the hot path because a Go map of a million string keys costs several
// cache misses a lookup (control word, key header, key bytes); this table
// costs one probe into a flat, pointer-free array of (hash, slot, copy)
// entries, and the id is confirmed against the table's own copy while the
// machine or order, which the caller needs next anyway, loads alongside.
// Linear probing, load ≤ 1/2, deletion by backward shift (no tombstones).
// It is never iterated, so its layout cannot leak into a result.
type idTable struct {
	e    []idEntry
	n    int
	mask uint64
	ids  idArena
}

type idEntry struct {
	h uint64 // hashID of the id; 0 marks an empty entry
	v uint32 // the slot
	// loc is the table's own copy of the id in ids (0: none). Confirming
	// a lookup against it rather than against the machine's or order's id
	// string makes the two loads that follow a probe (the record and the
	// id bytes) independent, so they overlap instead of queueing: one
	// cache miss less per lookup. It fits the entry's padding.
	loc uint32
}

// idArena holds copies of ids, each a length byte then the bytes, in
// cells of whole 16-byte granules carved from 64 KiB pointer-free blocks.
// Freed cells are reused per size, so churn does not grow it: it holds at
// most, for each cell size, as many cells as were ever live at once.
type idArena struct {
	blocks [][]byte
	next   uint32 // first unused granule of the last block
	free   [idMaxGranules + 1][]uint32
}

const (
	idGranule       = 16
	idBlockShift    = 12 // granules a block
	idBlockGranules = 1 << idBlockShift
	idMaxGranules   = (1 + MaxIDLen + idGranule - 1) / idGranule
)

func idGranules(n int) int { return (1 + n + idGranule - 1) / idGranule }

func (a *idArena) cell(loc uint32) []byte {
	off := int(loc&(idBlockGranules-1)) * idGranule
	return a.blocks[loc>>idBlockShift][off:]
}

// lineGranules is how many granules a 64-byte cache line holds; blocks
// are page-aligned, so granule k starts line k/lineGranules.
const lineGranules = 64 / idGranule

// lineStart is the first granule from next where a cell of g granules
// lies within one cache line, if it can. Confirming a lookup reads the
// whole cell: a UUID's cell (37 bytes in 3 granules) packed end to end
// would straddle two lines half the time, and each is a cache miss.
func lineStart(next uint32, g int) uint32 {
	if r := next % lineGranules; g <= lineGranules && r+uint32(g) > lineGranules {
		return next + lineGranules - r
	}
	return next
}

// put copies id (at most MaxIDLen bytes) into a cell and returns its
// location, never 0.
func (a *idArena) put(id string) uint32 {
	g := idGranules(len(id))
	var loc uint32
	if f := a.free[g]; len(f) > 0 {
		loc = f[len(f)-1]
		a.free[g] = f[:len(f)-1]
	} else {
		start := lineStart(a.next, g)
		if len(a.blocks) == 0 || int(start)+g > idBlockGranules {
			a.blocks = append(a.blocks, make([]byte, idBlockGranules*idGranule))
			start = 0
			if len(a.blocks) == 1 {
				start = 1 // location 0 means "no copy"
			}
			start = lineStart(start, g)
		}
		loc = uint32(len(a.blocks)-1)<<idBlockShift | start
		a.next = start + uint32(g)
	}
	c := a.cell(loc)
	c[0] = byte(len(id))
	copy(c[1:], id)
	return loc
}

func (a *idArena) equal(loc uint32, id string) bool {
	c := a.cell(loc)
	return int(c[0]) == len(id) && string(c[1:1+len(id)]) == id
}

func (a *idArena) release(loc uint32) {
	g := idGranules(int(a.cell(loc)[0]))
	a.free[g] = append(a.free[g], loc)
}

// hashID is a fixed (unseeded) 64-bit hash, so a table is the same on
// every run; it is never 0. The marketplace chooses ids (UUIDv7), so a
// seed against hash flooding is not needed.
func hashID(s string) uint64 {
	h := uint64(len(s)) * 0x9E3779B97F4A7C15
	for len(s) >= 8 {
		x := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = (h ^ x) * 0xbf58476d1ce4e5b9
		h ^= h >> 31
		s = s[8:]
	}
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 0x100000001b3
	}
	h ^= h >> 29
	h *= 0x94d049bb133111eb
	h ^= h >> 32
	return h | 1
}

func (t *idTable) grow() {
	old := t.e
	size := 2 * len(old)
	if size == 0 {
		size = 1024
	}
	t.e = make([]idEntry, size)
	t.mask = uint64(size - 1)
	for _, x := range old {
		if x.h != 0 {
			i := x.h & t.mask
			for t.e[i].h != 0 {
				i = (i + 1) & t.mask
			}
			t.e[i] = x
		}
	}
}

// insert adds (h, v); the id must not be present.
func (t *idTable) insert(h uint64, v uint32) { t.insertLoc(h, v, 0) }

// add inserts id (not present) for slot v, with the table's own copy, and
// returns its hash.
func (t *idTable) add(id string, v uint32) uint64 {
	h := hashID(id)
	t.insertLoc(h, v, t.ids.put(id))
	return h
}

func (t *idTable) insertLoc(h uint64, v, loc uint32) {
	if 2*(t.n+1) > len(t.e) {
		t.grow()
	}
	i := h & t.mask
	for t.e[i].h != 0 {
		i = (i + 1) & t.mask
	}
	t.e[i] = idEntry{h: h, v: v, loc: loc}
	t.n++
}

// delete removes (h, v), which must be present, and shifts later entries
// of the probe run back so lookups never stop early.
func (t *idTable) delete(h uint64, v uint32) {
	i := h & t.mask
	for t.e[i].h != h || t.e[i].v != v {
		i = (i + 1) & t.mask
	}
	if loc := t.e[i].loc; loc != 0 {
		t.ids.release(loc)
	}
	j := i
	for {
		j = (j + 1) & t.mask
		if t.e[j].h == 0 {
			break
		}
		k := t.e[j].h & t.mask // the entry's home
		// Move it into the hole unless its home lies cyclically in (i, j].
		if i <= j && (k <= i || k > j) || i > j && k <= i && k > j {
			t.e[i] = t.e[j]
			i = j
		}
	}
	t.e[i] = idEntry{}
	t.n--
}

// machineSlot looks a machine up by id. Machine ids are copied into the
// table (add): a heartbeat, half of all commands, is one lookup.
func (e *Engine) machineSlot(id string) (uint32, bool) {
	t := &e.machineIDs
	if t.n == 0 {
		return 0, false
	}
	h := hashID(id)
	for i := h & t.mask; t.e[i].h != 0; i = (i + 1) & t.mask {
		if x := t.e[i]; x.h == h && t.ids.equal(x.loc, id) {
			return x.v, true
		}
	}
	return 0, false
}

// orderSlot looks a live order up by id.
func (e *Engine) orderSlot(id string) (uint32, bool) {
	t := &e.orderIDs
	if t.n == 0 {
		return 0, false
	}
	// No copies in the table: an order id is written once and looked up
	// about once, so an arena copy would move a cache miss from lookup to
	// placement, where it lands on match latency. The order record keeps
	// its own copy instead (order.key), written with the record.
	h := hashID(id)
	for i := h & t.mask; t.e[i].h != 0; i = (i + 1) & t.mask {
		if t.e[i].h == h && e.ord(t.e[i].v).is(id) {
			return t.e[i].v, true
		}
	}
	return 0, false
}
