package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/protocol"
)

// Verification: a machine is listed only after it proves, at its claimed
// class rate, a challenge sized for a short window; the result is stored
// and shown, and a failing machine stays unlisted.

type challenge struct {
	machineID string
	agentID   string
	seed      poc.Seed
	target    poc.Target
	params    poc.Params
	workS     uint64
	issued    time.Time
	// checking: its proof is being checked (Verification); a second
	// answer to it is refused meanwhile.
	checking bool
}

// maybeVerifyLocked issues a verification challenge to an unverified
// machine that has something to list and none outstanding.
func (b *Broker) maybeVerifyLocked(ctx context.Context, m *machineState) {
	// A machine without a chain key cannot sign quotes or be paid: it is
	// not worth proving until it has one.
	if m.verified || m.model == "" || m.agentID == "" || m.providerAddress == "" {
		return
	}
	now := b.now()
	if m.verifying != 0 {
		c := b.verifies[m.verifying]
		if c != nil && now.Sub(c.issued) < b.cfg.VerifyWork+2*time.Minute {
			return // still proving
		}
		delete(b.verifies, m.verifying)
		m.verifying = 0
	}
	if now.Before(m.verifyAfter) {
		return
	}
	params := b.cfg.VerifyParams
	secs := int(b.cfg.VerifyWork / time.Second)
	if secs < 1 {
		secs = 1
	}
	target, err := poc.EpochTarget(params, m.model, 1, uint64(secs))
	if err != nil {
		b.log.Warn("no verification target", "machine", m.id, "model", m.model, "err", err)
		m.verifyAfter = now.Add(time.Hour)
		return
	}
	var seed poc.Seed
	_, _ = rand.Read(seed[:])
	id, err := b.mail.post(ctx, m.agentID, protocol.Assignment{Action: protocol.ActionVerify, Verify: &protocol.VerifyChallenge{
		Seed: hex.EncodeToString(seed[:]), Params: params, Difficulty: target.Difficulty, Required: target.Required, WorkSeconds: secs,
	}})
	if err != nil {
		b.log.Error("queue verification", "machine", m.id, "err", err)
		return
	}
	m.verifying = id
	b.verifies[id] = &challenge{machineID: m.id, agentID: m.agentID, seed: seed, target: target, params: params, workS: uint64(secs), issued: now}
	b.log.Info("verification challenge issued", "machine", m.id, "model", m.model, "required", target.Required, "work_s", secs)
}

// Verification checks an agent's answer to its verification challenge. The
// sample seed is drawn now, after the proof is fixed, so the prover cannot
// know which nonces will be recomputed.
func (b *Broker) Verification(ctx context.Context, agentID string, r protocol.VerificationResponse) error {
	b.mu.Lock()
	c := b.verifies[r.AssignmentID]
	if c == nil || c.agentID != agentID || c.checking {
		b.mu.Unlock()
		return &highway.Error{Code: highway.ENOTFOUND, Field: "assignment_id", Message: "No verification challenge with that id is outstanding for this agent."}
	}
	// The challenge stays outstanding while its proof is checked and the
	// verdict stored: a heartbeat meanwhile must not find the machine
	// unverified with nothing outstanding and issue a second challenge
	// (it did: a CI failure of TestReplicasBehindAProxy).
	c.checking = true
	b.mu.Unlock()
	done := func() {
		b.mu.Lock()
		delete(b.verifies, r.AssignmentID)
		b.mu.Unlock()
	}
	var verr error
	var measured int64
	if r.Error != "" {
		verr = errors.New(r.Error)
	} else {
		sample := make([]byte, 32)
		_, _ = rand.Read(sample)
		verr = poc.VerifyBytes(c.params, c.seed, c.target, r.Proof, sample)
		// The proof's count over the window is the machine's measured
		// rate for one GPU (the agent proves the challenge on one): what
		// the offer shows beside its class's nominal figure.
		if pr, err := poc.DecodeProof(c.params, r.Proof); verr == nil && err == nil {
			measured = int64(min(poc.MeasuredMilliH100(c.params, c.target, len(pr.Nonces), c.workS), 1<<40))
		}
	}
	now := b.now().UTC()
	if verr != nil {
		_ = b.store.SetMachineVerified(ctx, c.machineID, nil, verr.Error(), 0)
	} else if err := b.store.SetMachineVerified(ctx, c.machineID, &now, "", measured); err != nil {
		done()
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.verifies, r.AssignmentID)
	m := b.machines[c.machineID]
	if m == nil {
		return nil
	}
	m.verifying = 0
	if verr != nil {
		m.verifyAfter = now.Add(time.Minute)
		b.log.Warn("verification failed", "machine", c.machineID, "err", verr)
		// At most one alert an hour per machine: a failing machine retries
		// every minute.
		go b.alert(ctx, m.providerID, AlertVerificationFailed, m.id+":"+now.Format("2006-01-02T15"),
			"Machine "+m.hostname+" ("+m.id+") failed its verification proof, so it is not listed: "+verr.Error(), "/provider")
		return &highway.Error{Code: highway.EINVALID, Field: "proof", Message: "Verification proof rejected: " + verr.Error()}
	}
	m.verified, m.measured = true, measured
	b.log.Info("machine verified", "machine", c.machineID, "measured_milli_h100", measured)
	b.relistLocked(ctx, m)
	b.indexLocked(m)
	b.notifyLocked()
	return nil
}
