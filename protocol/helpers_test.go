package protocol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// sampleHeartbeat is a realistic 8-GPU DGX H100 beat.
func sampleHeartbeat(agentID string, gpus int) Heartbeat {
	h := Heartbeat{
		AgentID: agentID, Seq: 42, BootID: "boot-1", SentAt: 1_760_000_000_000,
		AgentVersion: "0.1.0", DriverVersion: "550.54.15", CUDAVersion: "12.4",
		RTTms:  map[string]int64{"eu-west": 12, "us-east": 85, "ap-south": 190},
		Leases: []RunningLease{{LeaseID: "lease-7", State: LeaseRunning, GPUs: []string{"GPU-00000000-0000-0000-0000-000000000000"}, Driver: "exec", StartedAt: 1_760_000_000_000}},
	}
	for i := 0; i < gpus; i++ {
		g := GPU{
			Index: i, UUID: fmt.Sprintf("GPU-%08d-0000-0000-0000-000000000000", i), Name: "NVIDIA H100 80GB HBM3", Class: "H100",
			MemoryTotalMiB: 81559, MemoryUsedMiB: 512, UtilizationPct: 3, TemperatureC: 34, PowerMW: 71_000, PowerLimitMW: 700_000,
			PCIeGen: 5, PCIeWidth: 16, Free: true,
		}
		if i == 0 {
			g.Free, g.LeaseID = false, "lease-7"
		}
		h.GPUs = append(h.GPUs, g)
	}
	return h
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type keyFixture struct {
	id   string
	pub  ed25519.PublicKey
	priv ed25519.PrivateKey
}

func newKey(t testing.TB, id string) keyFixture {
	t.Helper()
	seed := bytes.Repeat([]byte{byte(len(id))}, ed25519.SeedSize)
	priv := ed25519.NewKeyFromSeed(seed)
	return keyFixture{id: id, pub: priv.Public().(ed25519.PublicKey), priv: priv}
}

func keyStore(keys map[string]ed25519.PublicKey, revoked map[string]bool) KeyStore {
	return KeyStoreFunc(func(_ context.Context, id string) (ed25519.PublicKey, error) {
		if revoked[id] {
			return nil, fmt.Errorf("agent %s: %w", id, ErrRevokedAgent)
		}
		k, ok := keys[id]
		if !ok {
			return nil, fmt.Errorf("agent %s: %w", id, ErrUnknownAgent)
		}
		return k, nil
	})
}

// signedRequest builds a server-side view of a signed POST: signed as the
// client would, then turned into an incoming request.
func signedRequest(t testing.TB, s *Signer, path string, body any) *http.Request {
	t.Helper()
	data, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	out, err := http.NewRequest(http.MethodPost, "http://example"+path, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Sign(out); err != nil {
		t.Fatal(err)
	}
	in := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(data))
	in.Header = out.Header.Clone()
	return in
}

// GiB rounds the driver's usable memory to the nominal size buyers filter
// by: a real H100 80GB reports 81 559 MiB and must list as 80 GiB.
func TestGiBRoundsToNominal(t *testing.T) {
	for _, c := range []struct{ mib, gib uint64 }{
		{81_559, 80}, {81_920, 80}, {24_564, 24}, {46_068, 45}, {23_034, 22}, {143_771, 140}, {0, 0}, {511, 0}, {512, 1},
	} {
		if got := GiB(c.mib); got != c.gib {
			t.Errorf("GiB(%d) = %d, want %d", c.mib, got, c.gib)
		}
	}
}
