package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/highway-compute/highway/protocol"
)

func testEnv(vars map[string]string) (env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return env{
		stdout: &out, stderr: &errb,
		getenv:  func(k string) string { return vars[k] },
		newNVML: func() nvml.Interface { return nvml.New() },
	}, &out, &errb
}

// This machine has no NVIDIA driver: the real NVML's Init fails cleanly,
// and the command must say so and exit non-zero, never crash.
func TestGPUsWithoutDriver(t *testing.T) {
	e, out, errb := testEnv(nil)
	code := run(context.Background(), []string{"gpus"}, e)
	if code == 0 {
		t.Skipf("an NVIDIA driver is present here:\n%s", out)
	}
	if code != 1 || !strings.Contains(errb.String(), "NVML not found: is the NVIDIA driver installed?") {
		t.Fatalf("code %d, stderr %q", code, errb.String())
	}
}

func TestGPUsFake(t *testing.T) {
	e, out, errb := testEnv(nil)
	if code := run(context.Background(), []string{"gpus", "--fake-gpus", "dgxh100"}, e); code != 0 {
		t.Fatalf("code %d: %s", code, errb)
	}
	text := out.String()
	if strings.Count(text, "NVIDIA H100 80GB HBM3 (UUID: GPU-") != 8 || !strings.Contains(text, "SIMULATED") || !strings.Contains(text, "class H100") {
		t.Fatalf("output:\n%s", text)
	}
	// The environment fallback and JSON output.
	e, out, _ = testEnv(map[string]string{"HIGHWAY_FAKE_GPUS": "rtx4090x2"})
	if code := run(context.Background(), []string{"gpus", "--json"}, e); code != 0 {
		t.Fatal(code)
	}
	var inv struct {
		Simulated bool           `json:"simulated"`
		GPUs      []protocol.GPU `json:"gpus"`
	}
	if err := json.Unmarshal(out.Bytes(), &inv); err != nil || !inv.Simulated || len(inv.GPUs) != 2 || inv.GPUs[0].Class != "RTX4090" {
		t.Fatalf("%v %+v", err, inv)
	}
	e, _, errb = testEnv(nil)
	if code := run(context.Background(), []string{"gpus", "--fake-gpus", "voodoo2x1"}, e); code != 1 || !strings.Contains(errb.String(), "unknown fake GPU profile") {
		t.Fatalf("bad profile: %d %s", code, errb)
	}
}

func TestUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "Commands:"},
		{[]string{"--help"}, 0, "Commands:"},
		{[]string{"bogus"}, 2, "unknown command"},
		{[]string{"version"}, 0, "provider-agent dev"},
		{[]string{"run", "--help"}, 0, "-allow-exec"},
		{[]string{"enroll"}, 2, "--server and --token are required"},
		{[]string{"gpus", "extra"}, 2, "unexpected arguments"},
	} {
		e, out, errb := testEnv(nil)
		code := run(context.Background(), c.args, e)
		if code != c.code || !strings.Contains(out.String()+errb.String(), c.want) {
			t.Errorf("%v: code %d, output %q", c.args, code, out.String()+errb.String())
		}
	}
}

func TestSelftest(t *testing.T) {
	e, out, errb := testEnv(nil)
	if code := run(context.Background(), []string{"selftest", "--duration", "200ms", "--dev-params"}, e); code != 0 {
		t.Fatalf("code %d: %s", code, errb)
	}
	if !strings.Contains(out.String(), "nonces/s =") || !strings.Contains(out.String(), "H100-equivalents") || !strings.Contains(out.String(), "100%") ||
		!strings.Contains(out.String(), "Backend: cpu: ") {
		t.Fatalf("output %q", out)
	}
}

// TestEnrollAndRun wires the real commands to a minimal marketplace.
func TestEnrollAndRun(t *testing.T) {
	var mu sync.Mutex
	var beats []protocol.Heartbeat
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.URL.Path {
		case protocol.PathRegister:
			if _, err := protocol.DecodeRegisterRequest(body); err != nil {
				protocol.WriteError(w, err)
				return
			}
			w.WriteHeader(http.StatusCreated)
			_ = json.NewEncoder(w).Encode(protocol.RegisterResponse{AgentID: "agent-9", MachineID: "m", HeartbeatIntervalS: 10})
		case protocol.PathHeartbeat:
			hb, err := protocol.DecodeHeartbeat(body)
			if err != nil || r.Header.Get(protocol.HeaderSignature) == "" {
				protocol.WriteError(w, protocol.ErrMalformed)
				return
			}
			mu.Lock()
			beats = append(beats, hb)
			mu.Unlock()
			_ = json.NewEncoder(w).Encode(protocol.HeartbeatResponse{})
		case protocol.PathAssignments:
			select {
			case <-r.Context().Done():
			case <-time.After(50 * time.Millisecond):
			}
			_ = json.NewEncoder(w).Encode(protocol.AssignmentsResponse{})
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	vars := map[string]string{"HIGHWAY_STATE_DIR": dir, "HIGHWAY_FAKE_GPUS": "a100x4", "HIGHWAY_SERVER": srv.URL}
	e, out, errb := testEnv(vars)
	if code := run(context.Background(), []string{"enroll", "--token", "t0k"}, e); code != 0 {
		t.Fatalf("enroll: %d %s", code, errb)
	}
	if !strings.Contains(out.String(), "Enrolled as agent agent-9") {
		t.Fatalf("%s", out)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	e, _, errb = testEnv(vars)
	go func() {
		done <- run(ctx, []string{"run", "--heartbeat-interval", "20ms", "--metrics-addr", "127.0.0.1:0", "--docker=false"}, e)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(beats)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no beats; stderr: %s", errb)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("run exited %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if hb := beats[0]; hb.AgentID != "agent-9" || !hb.Simulated || len(hb.GPUs) != 4 || hb.GPUs[0].Class != "A100" {
		t.Fatalf("beat %+v", hb)
	}
}
