package broker

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/accounts"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// Providers and their agents: enrollment, registration, suspension. The
// handlers parse and render; every write of provider state is here.

// EnrollmentTTL is how long a new enrollment token works: long enough to
// install the agent, short enough that a leaked token soon dies.
const EnrollmentTTL = time.Hour

// suspendReasonMax matches the dispute note's bound: a line the provider
// reads, not an essay.
const suspendReasonMax = 256

// Enroll creates a one-time enrollment token for the provider's next
// machine. Only its hash is stored; the token is shown once.
func (b *Broker) Enroll(ctx context.Context, providerID string) (string, error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := "hwe_" + base64.RawURLEncoding.EncodeToString(raw)
	now := b.now().UTC()
	t := &models.EnrollmentToken{TokenHash: accounts.HashToken(token), ProviderID: providerID, CreatedAt: now, ExpiresAt: now.Add(EnrollmentTTL)}
	if err := b.store.CreateEnrollmentToken(ctx, t); err != nil {
		return "", err
	}
	return token, nil
}

// RegisterAgent trades a one-time enrollment token for an agent identity:
// the agent's public key is stored and its machine created, owned by the
// provider who made the token.
func (b *Broker) RegisterAgent(ctx context.Context, req protocol.RegisterRequest) (*models.Agent, *models.Machine, error) {
	m := &models.Machine{Hostname: req.Hostname, AgentVersion: req.AgentVersion, DriverVersion: req.DriverVersion,
		CUDAVersion: req.CUDAVersion, Simulated: req.Simulated}
	a := &models.Agent{PublicKey: req.PublicKey}
	if err := b.store.RegisterAgent(ctx, accounts.HashToken(req.Token), b.now(), m, a); err != nil {
		return nil, nil, err
	}
	b.log.Info("agent registered", "agent", a.ID, "machine", m.ID, "provider", m.ProviderID, "simulated", m.Simulated)
	return a, m, nil
}

// SuspendProvider suspends (with a reason the provider is shown) or
// reinstates a provider: the engine stops or resumes matching its offers,
// and the reason is stored on its machines for the console. Returns
// EINVALID (reason) or ENOTFOUND (no such user).
func (b *Broker) SuspendProvider(ctx context.Context, providerID string, suspend bool, reason string) error {
	reason = strings.TrimSpace(reason)
	if suspend && reason == "" {
		return &highway.Error{Code: highway.EINVALID, Field: "reason", Message: "Give a reason; the provider is shown it."}
	}
	if len(reason) > suspendReasonMax {
		return &highway.Error{Code: highway.EINVALID, Field: "reason", Message: "The reason is at most 256 characters."}
	}
	if _, err := b.store.UserByID(ctx, providerID); err != nil {
		return err
	}
	if err := b.SetSuspended(ctx, providerID, suspend); err != nil {
		return err
	}
	var at *time.Time
	if suspend {
		now := b.now()
		at = &now
	} else {
		reason = ""
	}
	return b.store.SetProviderSuspended(ctx, providerID, reason, at)
}
