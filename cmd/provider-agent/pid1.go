package main

import (
	"os"

	"github.com/highway-compute/highway/provider-agent/reaper"
)

// superviseIfPID1: as PID 1, which the agent is in its container image,
// the process runs the agent again as its child and only reaps and
// forwards signals, so the orphans of ended leases do not pile up as
// zombies (provider-agent/reaper says why). It never returns then.
func superviseIfPID1() {
	if !reaper.Needed() {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	os.Exit(reaper.Run(append([]string{exe}, os.Args[1:]...)))
}
