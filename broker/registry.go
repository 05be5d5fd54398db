package broker

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/highway-compute/highway"
	"github.com/highway-compute/highway/models"
	"github.com/highway-compute/highway/protocol"
)

// A buyer's registry login for a private image is held only as long as
// something may pull the image: sealed with AES-256-GCM under the wallet
// key (the order's id as additional data, so a sealed login copied onto
// another order does not open), never in the order's workload, its
// idempotency digest, an assignment's stored body, a page or a log line.
// It is opened for one purpose, handing it to the agent with the lease's
// start, and erased when the order fails or the lease ends.

func loginAD(orderID string) string { return "registry-login/" + orderID }

// sealLogin seals a login for orderID ("" for none).
func (b *Broker) sealLogin(orderID string, a *protocol.RegistryAuth) (string, error) {
	if a == nil {
		return "", nil
	}
	if len(b.cfg.WalletKey) != 32 {
		return "", &highway.Error{Code: highway.ECONFLICT, Field: "workload.registry_auth", Message: "This marketplace cannot keep registry logins (no sealing key is configured)."}
	}
	raw, err := json.Marshal(a)
	if err != nil {
		return "", err
	}
	return b.seal(loginAD(orderID), raw)
}

// openLogin opens an order's sealed login.
func (b *Broker) openLogin(o *models.Order) (*protocol.RegistryAuth, error) {
	if o.RegistryLogin == "" {
		return nil, nil
	}
	raw, err := b.unseal(loginAD(o.ID), o.RegistryLogin)
	if err != nil {
		return nil, errors.New("the sealed registry login does not open")
	}
	var a protocol.RegistryAuth
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// withLogin adds the lease's registry login to a start as it is handed to
// the agent. Should it not open, the start goes without it: the pull then
// fails with "the registry refused access", which the buyer sees.
func (b *Broker) withLogin(ctx context.Context, l *models.Lease, as *protocol.Assignment) {
	o, err := b.store.OrderByID(ctx, l.OrderID)
	if err != nil {
		return
	}
	a, err := b.openLogin(o)
	if err != nil {
		b.log.Error("registry login", "lease", l.ID, "err", err)
		return
	}
	as.Workload.RegistryAuth = a
}
