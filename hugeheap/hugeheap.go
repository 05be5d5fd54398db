// Package hugeheap gives the Go heap transparent huge pages where the
// kernel only grants them on request (THP mode "madvise", the common
// default).
//
// The matching engine's book is hundreds of megabytes read at random: at
// a million offers nearly every lookup misses the TLB on 4 KiB pages, and
// on 2 MiB pages almost none does (docs/matching.md measures 15–25 % more
// throughput and a p99 halved). Go's runtime no longer asks for huge
// pages itself, so under "madvise" its heap never gets them.
//
// Prepare reserves heap address space by allocating one large object it
// never touches, marks that range MADV_HUGEPAGE, and lets the object go.
// The runtime keeps the range mapped and hands it out again first (its
// page allocator is address-ordered), so what the process allocates next
// faults in as 2 MiB pages. Call it at start, before the engine is built.
package hugeheap

// Report says what Prepare did.
type Report struct {
	// Mode is the kernel's THP mode: "always", "madvise", "never", or
	// "unsupported" where there is no such setting.
	Mode string
	// Advised is how many bytes of heap address space were marked; 0
	// when the mode made it pointless or the reservation was refused.
	Advised int
	// Why explains a zero Advised in words for the log.
	Why string
}
