package protocol

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestNormalizeClass(t *testing.T) {
	cases := map[string]string{
		"NVIDIA H100 80GB HBM3":      "H100",
		"NVIDIA H100 PCIe":           "H100-PCIE",
		"NVIDIA H100 NVL":            "H100-PCIE",
		"NVIDIA A100-SXM4-40GB":      "A100",
		"Mock NVIDIA A100-SXM4-40GB": "A100",
		"NVIDIA A100 80GB PCIe":      "A100",
		"NVIDIA H200 141GB HBM3e":    "H200",
		"NVIDIA B200 180GB HBM3e":    "B200",
		"NVIDIA L40S":                "L40S",
		"NVIDIA L4":                  "L4",
		"NVIDIA GeForce RTX 4090":    "RTX4090",
		"NVIDIA GeForce RTX 3090 Ti": "RTX3090TI",
		"Tesla V100-SXM2-16GB":       "V100",
		"":                           "UNKNOWN",
		"!!!":                        "UNKNOWN",
	}
	for in, want := range cases {
		if got := NormalizeClass(in); got != want {
			t.Errorf("NormalizeClass(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHeartbeatValidate(t *testing.T) {
	good := sampleHeartbeat("agent-1", 8)
	if err := good.Validate(); err != nil {
		t.Fatalf("sample heartbeat invalid: %v", err)
	}
	cases := []struct {
		name  string
		mut   func(h *Heartbeat)
		field string
	}{
		{"no agent", func(h *Heartbeat) { h.AgentID = "" }, "agent_id"},
		{"seq zero", func(h *Heartbeat) { h.Seq = 0 }, "seq"},
		{"too many gpus", func(h *Heartbeat) { h.GPUs = sampleHeartbeat("a", 65).GPUs }, "gpus"},
		{"dup uuid", func(h *Heartbeat) { h.GPUs[1].UUID = h.GPUs[2].UUID }, "gpus[2].uuid"},
		{"dup index", func(h *Heartbeat) { h.GPUs[1].Index = 2 }, "gpus[2].index"},
		{"used > total", func(h *Heartbeat) { h.GPUs[3].MemoryUsedMiB = 1 << 20 }, "gpus[3].memory_used_mib"},
		{"util > 100", func(h *Heartbeat) { h.GPUs[0].UtilizationPct = 101 }, "gpus[0].utilization_pct"},
		{"hot", func(h *Heartbeat) { h.GPUs[0].TemperatureC = 1000 }, "gpus[0].temperature_c"},
		{"free with lease", func(h *Heartbeat) { h.GPUs[0].Free = true }, "gpus[0].free"},
		{"bad class", func(h *Heartbeat) { h.GPUs[0].Class = "h100 sxm" }, "gpus[0].class"},
		{"control chars", func(h *Heartbeat) { h.GPUs[0].Name = "H100\x00" }, "gpus[0].name"},
		{"rtt range", func(h *Heartbeat) { h.RTTms["eu-west"] = -1 }, "rtt_ms.eu-west"},
		{"lease state", func(h *Heartbeat) { h.Leases[0].State = "dancing" }, "running_leases[0].state"},
		{"long name", func(h *Heartbeat) { h.GPUs[0].Name = strings.Repeat("x", 200) }, "gpus[0].name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := sampleHeartbeat("agent-1", 8)
			c.mut(&h)
			err := h.Validate()
			var pe *Error
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("want *Error wrapping ErrInvalid, got %v", err)
			}
			if pe.Field != c.field {
				t.Fatalf("field = %q, want %q (%v)", pe.Field, c.field, err)
			}
		})
	}
}

func TestDecodeHeartbeat(t *testing.T) {
	h := sampleHeartbeat("agent-1", 8)
	data, _ := json.Marshal(h)
	got, err := DecodeHeartbeat(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.GPUs) != 8 || got.GPUs[0].LeaseID != "lease-7" {
		t.Fatalf("decoded %+v", got)
	}
	for name, c := range map[string]struct {
		data []byte
		want error
	}{
		"trailing":   {append(append([]byte{}, data...), []byte(` {}`)...), ErrMalformed},
		"not json":   {[]byte(`{"agent_id":`), ErrMalformed},
		"wrong type": {[]byte(`{"agent_id": 5}`), ErrMalformed},
		"oversized":  {bytes.Repeat([]byte(" "), DefaultMaxBody+1), ErrTooLarge},
		"empty obj":  {[]byte(`{}`), ErrInvalid},
		"null":       {[]byte(`null`), ErrInvalid},
	} {
		if _, err := DecodeHeartbeat(c.data); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
}

func TestCheckContinuity(t *testing.T) {
	prev := sampleHeartbeat("agent-1", 8)
	next := sampleHeartbeat("agent-1", 8)
	next.Seq = prev.Seq + 1
	if err := CheckContinuity(&prev, &next); err != nil {
		t.Fatal(err)
	}
	if err := CheckContinuity(nil, &next); err != nil {
		t.Fatal(err)
	}
	stale := next
	stale.Seq = prev.Seq
	if err := CheckContinuity(&prev, &stale); !errors.Is(err, ErrStaleSeq) {
		t.Fatalf("stale seq: %v", err)
	}
	rebooted := stale
	rebooted.BootID, rebooted.Seq = "boot-2", 1
	if err := CheckContinuity(&prev, &rebooted); err != nil {
		t.Fatalf("new boot with seq 1 rejected: %v", err)
	}
	swapped := sampleHeartbeat("agent-1", 8)
	swapped.Seq = prev.Seq + 1
	swapped.GPUs[5].UUID = "GPU-other"
	err := CheckContinuity(&prev, &swapped)
	var pe *Error
	if !errors.Is(err, ErrGPUChanged) || !errors.As(err, &pe) || pe.Field != "gpus[5].uuid" {
		t.Fatalf("swapped GPU: %v", err)
	}
	if st, body := Describe(err); st != http.StatusConflict || body.Error.Reason != "gpu_changed" {
		t.Fatalf("describe: %d %+v", st, body)
	}
}

func TestAssignmentValidate(t *testing.T) {
	a := Assignment{ID: 1, LeaseID: "l1", Action: ActionStart, GPUs: []string{"GPU-a"}, Workload: Workload{Command: "echo hi"}}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(a *Assignment){
		func(a *Assignment) { a.Action = "pause" },
		func(a *Assignment) { a.GPUs = nil },
		func(a *Assignment) { a.GPUs = []string{"GPU-a", "GPU-a"} },
		func(a *Assignment) { a.Workload.Image = "x" },
		func(a *Assignment) { a.Workload = Workload{Image: "--privileged"} },
		func(a *Assignment) { a.Workload.Env = map[string]string{"1BAD": "x"} },
		func(a *Assignment) { a.ID = 0 },
	}
	for i, mut := range bad {
		b := a
		b.GPUs = append([]string(nil), a.GPUs...)
		mut(&b)
		if err := b.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("case %d: got %v", i, err)
		}
	}
	resp := AssignmentsResponse{Assignments: []Assignment{a, {ID: 2, LeaseID: "l1", Action: "nope"}}}
	err := resp.Validate()
	var pe *Error
	if !errors.As(err, &pe) || pe.Field != "assignments[1].action" {
		t.Fatalf("nested field: %v", err)
	}
}

func TestQuoteAndLogValidate(t *testing.T) {
	q := Quote{Provider: "hwy1p", Buyer: "hwy1b", GPUClass: "H100", GPUs: 8, PricePerEpoch: "1250000", Epochs: 24, ExpiresAt: 1_760_000_000, Nonce: 7}
	if err := q.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"", "0", "00", "-1", "1.5", "1e9"} {
		q2 := q
		q2.PricePerEpoch = p
		if err := q2.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("price %q accepted", p)
		}
	}
	if err := (&QuoteResponse{RequestID: "r1", Quote: &q}).Validate(); err == nil {
		t.Error("unsigned quote response accepted")
	}
	b := LogBatch{LeaseID: "l1", Lines: []LogLine{{Seq: 1, Time: 1, Stream: StreamStdout, Text: "hi"}, {Seq: 2, Time: 1, Stream: StreamStderr, Text: "ho"}}}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	b.Lines[1].Seq = 1
	if err := b.Validate(); !errors.Is(err, ErrInvalid) {
		t.Fatal("non-increasing seq accepted")
	}
}

func TestSignVerify(t *testing.T) {
	k := newKey(t, "agent-1")
	other := newKey(t, "agent-22")
	clock := &fakeClock{t: time.UnixMilli(1_760_000_000_000)}
	nonces := NewMemoryNonceStore(1024)
	v := &Verifier{
		Keys:   keyStore(map[string]ed25519.PublicKey{k.id: k.pub, other.id: other.pub}, map[string]bool{"agent-revoked": true}),
		Nonces: nonces, Now: clock.Now,
	}
	s := &Signer{AgentID: k.id, Key: k.priv, Now: clock.Now}
	hb := sampleHeartbeat(k.id, 8)

	req := signedRequest(t, s, PathHeartbeat+"?x=1", hb)
	replay := req.Clone(req.Context())
	replay.Body = httptest.NewRequest(http.MethodPost, PathHeartbeat, bytes.NewReader(mustJSON(t, hb))).Body
	vr, got, err := v.VerifyHeartbeat(req)
	if err != nil {
		t.Fatalf("valid request rejected: %v", err)
	}
	if vr.AgentID != k.id || got.Seq != hb.Seq {
		t.Fatalf("verified %+v", vr)
	}
	// The body stays readable for frameworks.
	if b, _ := readAll(req); !bytes.Equal(b, vr.Body) {
		t.Fatal("body not restored")
	}
	if _, err := v.Verify(replay); !errors.Is(err, ErrReplay) {
		t.Fatalf("replay: %v", err)
	}

	check := func(name string, r *http.Request, want error, status int) {
		t.Helper()
		_, err := v.Verify(r)
		if !errors.Is(err, want) {
			t.Fatalf("%s: got %v, want %v", name, err, want)
		}
		if st, body := Describe(err); st != status || body.Error.Message == "" {
			t.Fatalf("%s: status %d body %+v", name, st, body)
		}
	}

	// Forged: signed by another key but claiming agent-1.
	forger := &Signer{AgentID: k.id, Key: other.priv, Now: clock.Now}
	check("forged", signedRequest(t, forger, PathHeartbeat, hb), ErrBadSignature, 401)

	// Tampered body.
	r := signedRequest(t, s, PathHeartbeat, hb)
	hb2 := hb
	hb2.Seq++
	r.Body = httptest.NewRequest(http.MethodPost, PathHeartbeat, bytes.NewReader(mustJSON(t, hb2))).Body
	r.ContentLength = -1
	check("tampered body", r, ErrBadSignature, 401)

	// Tampered path.
	r = signedRequest(t, s, PathHeartbeat, hb)
	r.RequestURI = PathLogs
	check("tampered path", r, ErrBadSignature, 401)

	// Stale and future timestamps.
	old := &Signer{AgentID: k.id, Key: k.priv, Now: func() time.Time { return clock.Now().Add(-2 * time.Minute) }}
	check("stale", signedRequest(t, old, PathHeartbeat, hb), ErrStaleTimestamp, 401)
	future := &Signer{AgentID: k.id, Key: k.priv, Now: func() time.Time { return clock.Now().Add(61 * time.Second) }}
	check("future", signedRequest(t, future, PathHeartbeat, hb), ErrStaleTimestamp, 401)

	// Unknown and revoked agents.
	check("unknown", signedRequest(t, &Signer{AgentID: "agent-x", Key: k.priv, Now: clock.Now}, PathHeartbeat, hb), ErrUnknownAgent, 401)
	check("revoked", signedRequest(t, &Signer{AgentID: "agent-revoked", Key: k.priv, Now: clock.Now}, PathHeartbeat, hb), ErrRevokedAgent, 403)

	// Missing and malformed headers.
	r = signedRequest(t, s, PathHeartbeat, hb)
	r.Header.Del(HeaderNonce)
	check("missing nonce", r, ErrMissingAuth, 401)
	r = signedRequest(t, s, PathHeartbeat, hb)
	r.Header.Set(HeaderNonce, "short")
	check("short nonce", r, ErrMalformed, 400)
	r = signedRequest(t, s, PathHeartbeat, hb)
	r.Header.Set(HeaderSignature, "!!")
	check("bad sig encoding", r, ErrMalformed, 400)

	// Oversized body.
	big := strings.Repeat("x", DefaultMaxBody+10)
	check("too large", signedRequest(t, s, PathLogs, big), ErrTooLarge, 413)

	// Signed by agent-22 but the body claims agent-1.
	_, _, err = v.VerifyHeartbeat(signedRequest(t, &Signer{AgentID: other.id, Key: other.priv, Now: clock.Now}, PathHeartbeat, hb))
	if !errors.Is(err, ErrAgentMismatch) {
		t.Fatalf("mismatch: %v", err)
	}

	// After the window the nonce is forgotten, but the timestamp is then stale.
	clock.Add(3 * time.Minute)
	if _, err := v.Verify(replay); !errors.Is(err, ErrStaleTimestamp) {
		t.Fatalf("old replay: %v", err)
	}
}

func TestMemoryNonceStore(t *testing.T) {
	m := NewMemoryNonceStore(2)
	now := time.Unix(1000, 0)
	exp := now.Add(time.Minute)
	if err := m.Use(t.Context(), "a", now, exp); err != nil {
		t.Fatal(err)
	}
	if err := m.Use(t.Context(), "a", now, exp); !errors.Is(err, ErrReplay) {
		t.Fatalf("dup: %v", err)
	}
	if err := m.Use(t.Context(), "b", now, exp); err != nil {
		t.Fatal(err)
	}
	if err := m.Use(t.Context(), "c", now, exp); !errors.Is(err, ErrBusy) {
		t.Fatalf("full: %v", err)
	}
	later := exp.Add(time.Second)
	if err := m.Use(t.Context(), "c", later, later.Add(time.Minute)); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if m.Len() != 1 {
		t.Fatalf("len %d", m.Len())
	}
	if err := m.Use(t.Context(), "a", later, later.Add(time.Minute)); err != nil {
		t.Fatalf("expired key reused: %v", err)
	}
}

func TestWriteError(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, errf(ErrReplay, HeaderNonce, "nonce already used"))
	var body ErrorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != 401 || body.Error.Reason != "replay" || body.Error.Field != HeaderNonce || body.Error.Code != "unauthorized" {
		t.Fatalf("%d %+v", w.Code, body)
	}
	w = httptest.NewRecorder()
	WriteError(w, errors.New("db exploded at 10.0.0.5"))
	if w.Code != 500 || strings.Contains(w.Body.String(), "10.0.0.5") {
		t.Fatalf("internal error leaked: %s", w.Body.String())
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func readAll(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(r.Body)
	return b.Bytes(), err
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.0 kB", 3 << 20: "3.1 MB", 20_000_000_000: "20.0 GB", 1_999_999: "1.9 MB",
		1 << 62: "4611.6 PB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}
