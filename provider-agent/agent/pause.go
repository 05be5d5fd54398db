package agent

import (
	"fmt"
	"strconv"
	"time"

	"github.com/highway-compute/highway/provider-agent/prover"
)

// localLease is the marketplace's id of the job's chain lease, as its
// start assignment recorded it ("" when it was not assigned here).
func (a *Agent) localLease(job prover.Job) string {
	id, err := strconv.ParseUint(job.LeaseID, 10, 64)
	if err != nil {
		return ""
	}
	a.ownMu.Lock()
	defer a.ownMu.Unlock()
	return a.leaseOf[id]
}

// leaseGPUs returns the UUIDs of the GPUs the job's lease was assigned
// here, running or not, so a GPU prover proves there and nowhere else (a
// lease whose workload exited is still proved, on its own GPUs, and
// other leases' GPUs are never touched); nil when the lease is unknown
// here (the prover then uses every GPU).
func (a *Agent) leaseGPUs(job prover.Job) []string {
	leaseID := a.localLease(job)
	if leaseID == "" {
		return nil
	}
	for _, l := range a.runner.Leases() {
		if l.LeaseID == leaseID {
			return l.GPUs
		}
	}
	return nil
}

// pauseFor pauses the lease's workload while a prover that uses the GPUs
// proves its epoch, and returns what resumes it. With the CPU prover the
// workload runs on: the proof does not touch its GPUs.
func (a *Agent) pauseFor(job prover.Job) (resume func()) {
	g, ok := a.cfg.Prover.(interface{ UsesGPUs() bool })
	if !ok || !g.UsesGPUs() {
		return func() {}
	}
	leaseID := a.localLease(job)
	if leaseID == "" {
		return func() {}
	}
	if err := a.runner.Pause(leaseID, fmt.Sprintf("Proof-of-Compute for epoch %d uses the GPUs until %s", job.Epoch, job.Deadline.UTC().Format(time.RFC3339))); err != nil {
		a.log.Warn("proving beside the running workload", "lease", leaseID, "epoch", job.Epoch, "err", err)
		return func() {}
	}
	return func() {
		if err := a.runner.Resume(leaseID); err != nil {
			a.log.Error("resume workload after the proof", "lease", leaseID, "err", err)
		}
	}
}
