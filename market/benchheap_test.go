package market

import (
	"os"
	"sync"

	"github.com/highway-compute/highway/hugeheap"
)

// benchHeap gives the process's heap 2 MiB pages, as highway serve does
// at start (docs/deploy.md), where the kernel grants them only on request;
// HIGHWAY_BENCH_HUGEHEAP=0 leaves 4 KiB pages. Each benchmark whose figure
// depends on it calls it itself, once a process: a figure must not depend
// on which benchmarks ran before it in the same binary (the peer
// comparison measured 1.9–2.6× run alone and 3.3–4.5× after
// BenchmarkMarket before it did).
func benchHeap() hugeheap.Report {
	benchHeapOnce.Do(func() {
		benchHeapReport = hugeheap.Report{Mode: hugeheap.Mode(), Why: "off (HIGHWAY_BENCH_HUGEHEAP=0)"}
		if os.Getenv("HIGHWAY_BENCH_HUGEHEAP") != "0" {
			benchHeapReport = hugeheap.Prepare(1 << 30)
		}
	})
	return benchHeapReport
}

var (
	benchHeapOnce   sync.Once
	benchHeapReport hugeheap.Report
)
