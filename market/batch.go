package market

// ApplyBatch applies cmds in order, exactly as Apply on each in turn
// would, and calls fn after each with its index, its events (valid only
// during the call, as Apply's) and its error. It stops after a command
// for which fn returns false, and reports how many it applied (the
// commands that failed included).
//
// Why a batch: at a million machines the id table, the id copies and the
// machine and order records do not fit in cache, so a lookup by id costs
// two or three memory round trips in a row (the table entry, then the
// record it names), and a heartbeat, half of all commands, is little else.
// Apply cannot start those loads before it knows the slot; a batch can.
// Before it applies a group of batchGroup commands, ApplyBatch loads the
// table entries of the whole group in one pass (independent loads, so the
// memory system serves them together), then the records they name in a
// second pass, and the group's commands then find them in cache: two
// round trips per group instead of two or three per command.
//
// The passes only read, and each command is applied as Apply applies it
// (its lookups repeated), so the result is the same whatever an earlier
// command of the group changed: a stale warm-up costs a wasted load,
// never a wrong answer. TestApplyBatchSameAsApply checks this on the
// differential streams.
func (e *Engine) ApplyBatch(cmds []Command, fn func(i int, evs []Event, err error) bool) int {
	for start := 0; start < len(cmds); start += batchGroup {
		group := cmds[start:min(start+batchGroup, len(cmds))]
		e.warm(group)
		for i := range group {
			evs, err := e.Apply(&group[i])
			if !fn(start+i, evs, err) {
				return start + i + 1
			}
		}
	}
	return len(cmds)
}

// batchGroup is how many commands' lookups are started together: enough
// to overlap the round trips, few enough that what they bring into cache
// is still there when their commands run.
const batchGroup = 16

// warm starts the loads the group's lookups by id will make.
func (e *Engine) warm(group []Command) {
	var hs [batchGroup]uint64
	var tabs [batchGroup]*idTable
	for i := range group {
		c := &group[i]
		switch c.Kind {
		case KindHeartbeat, KindUpsertMachine, KindRemoveMachine:
			tabs[i], hs[i] = &e.machineIDs, hashID(c.Machine)
		case KindConfirmLease, KindReleaseLease, KindCancelOrder, KindPlaceOrder:
			// A new order's id is looked up too (it must not be live yet):
			// its home entry is the miss.
			tabs[i], hs[i] = &e.orderIDs, hashID(c.Order)
		}
	}
	// Pass 1: the home entry of each id. Entries whose hash matches name
	// a slot (the id itself is confirmed when the command runs).
	var slots [batchGroup]uint32
	var locs [batchGroup]uint32
	var hit [batchGroup]bool
	for i := range group {
		t := tabs[i]
		if t == nil || t.n == 0 {
			continue
		}
		x := t.e[hs[i]&t.mask]
		if x.h == hs[i] {
			slots[i], locs[i], hit[i] = x.v, x.loc, true
		}
	}
	// Pass 2: the records (and the machine id copies) they name. The sum
	// keeps the loads from being dropped as unused.
	var sink uint64
	for i := range group {
		if !hit[i] {
			continue
		}
		if tabs[i] == &e.machineIDs {
			sink += e.mach(slots[i]).free
			if locs[i] != 0 {
				sink += uint64(e.machineIDs.ids.cell(locs[i])[0])
			}
		} else {
			sink += uint64(e.ord(slots[i]).key[0]) // the line orderSlot confirms the id on
		}
	}
	e.warmSink += sink
}
