package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/highway-compute/highway/protocol"
	"github.com/highway-compute/highway/provider-agent/client"
	"github.com/highway-compute/highway/provider-agent/gpu"
	"github.com/highway-compute/highway/provider-agent/state"
)

// EnrollRequest is what `provider-agent enroll` collects.
type EnrollRequest struct {
	ServerURL string
	Token     string
	Hostname  string
	Version   string
	Inventory gpu.Inventory
	// Rand is the key's entropy source (crypto/rand.Reader in production).
	Rand io.Reader
	Now  func() time.Time
}

// Enroll generates the agent's ed25519 key, registers its public half with
// the one-time token, and stores the key (0600) and the answer in dir. The
// key is written before registering, so a crash between the two never
// leaves a registered agent without its key. If registration fails, the
// unregistered key stays and the next enroll (with a valid token) reuses
// it; a directory that already holds an enrollment is refused.
func Enroll(ctx context.Context, api *client.Client, dir state.Dir, req EnrollRequest) (state.State, error) {
	if req.Token == "" {
		return state.State{}, fmt.Errorf("enroll: a one-time token from the provider console is required")
	}
	if err := dir.Init(); err != nil {
		return state.State{}, fmt.Errorf("enroll: %w", err)
	}
	if _, err := dir.Load(); err == nil {
		return state.State{}, fmt.Errorf("enroll: %w", state.ErrAlreadyEnrolled)
	}
	var priv ed25519.PrivateKey
	var err error
	if dir.HasKey() {
		if priv, err = dir.LoadKey(); err != nil {
			return state.State{}, fmt.Errorf("enroll: reuse key of an earlier, failed enrollment: %w", err)
		}
	} else {
		if priv, err = state.GenerateKey(req.Rand); err != nil {
			return state.State{}, fmt.Errorf("enroll: %w", err)
		}
		if err := dir.SaveKey(priv); err != nil {
			return state.State{}, fmt.Errorf("enroll: %w", err)
		}
	}
	pub := base64.StdEncoding.EncodeToString(priv.Public().(ed25519.PublicKey))
	inv := req.Inventory
	resp, err := api.Register(ctx, protocol.RegisterRequest{
		Token: req.Token, PublicKey: pub, Hostname: req.Hostname, AgentVersion: req.Version,
		ProtocolVersion: protocol.Version, DriverVersion: inv.DriverVersion, CUDAVersion: inv.CUDAVersion,
		Simulated: inv.Simulated, GPUs: inv.GPUs,
	})
	if err != nil {
		return state.State{}, fmt.Errorf("enroll: %w", err)
	}
	now := time.Now
	if req.Now != nil {
		now = req.Now
	}
	st := state.State{
		AgentID: resp.AgentID, MachineID: resp.MachineID, ServerURL: req.ServerURL, PublicKey: pub,
		EnrolledAt: now().UTC(), HeartbeatIntervalS: resp.HeartbeatIntervalS, Regions: resp.Regions,
	}
	if err := dir.Save(st); err != nil {
		return state.State{}, fmt.Errorf("enroll: registered as %s but could not save state: %w", resp.AgentID, err)
	}
	return st, nil
}
