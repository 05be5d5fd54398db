package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// referenceHeartbeat decodes as the general path does, without Validate.
func referenceHeartbeat(data []byte) (Heartbeat, error) {
	var h Heartbeat
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&h); err != nil {
		return Heartbeat{}, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Heartbeat{}, errors.New("trailing data")
	}
	return h, nil
}

// FuzzFastHeartbeat: whatever the fast decoder accepts, encoding/json
// accepts too and reads identically; what it declines goes to
// encoding/json, so it can never widen or change what the server accepts.
func FuzzFastHeartbeat(f *testing.F) {
	for _, h := range []Heartbeat{sampleHeartbeat("agent-1", 8), sampleHeartbeat("a", 0), randomHeartbeat(rand.New(rand.NewPCG(1, 2)))} {
		b, _ := json.Marshal(h)
		f.Add(b)
		ind, _ := json.MarshalIndent(h, "", "\t")
		f.Add(ind)
	}
	for _, s := range []string{
		`{}`, `null`, `{"seq":-0}`, `{"seq":01}`, `{"seq":1e3}`, `{"sent_at":-9223372036854775808}`,
		`{"sent_at":-9223372036854775809}`, `{"seq":18446744073709551615}`, `{"seq":18446744073709551616}`,
		`{"gpus":[null,{"index":1,"power_mw":4294967296}]}`, `{"rtt_ms":{"a":null,"a":3}}`, `{"Agent_ID":"x"}`,
		`{"agent_id":"a","agent_id":"b"}`, `{"agent_id":"a\u0062"}`, `{"simulated":truex}`, `{"gpus":[]} x`,
		`{"running_leases":[{"exit_code":-1,"pull":{"image":"i","done_bytes":5}},null]}`, "{\"boot_id\":\"\xff\"}",
		`{"gpus":[{"unsupported":[null,"x"]}]}`, `{"gpus":[{"index":1.0}]}`, `{"agent_id":null,"seq":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast Heartbeat
		if !fastHeartbeat(data, &fast) {
			return
		}
		ref, err := referenceHeartbeat(data)
		if err != nil {
			t.Fatalf("fast path accepted what encoding/json refuses (%v): %q", err, data)
		}
		if !reflect.DeepEqual(fast, ref) {
			t.Fatalf("fast path read %q differently:\n fast %#v\n  ref %#v", data, fast, ref)
		}
	})
}

// TestFastHeartbeatTakesAgentsBeats: beats as an agent encodes them (every
// shape: no GPUs, nil and empty lists, pointers, extreme numbers,
// non-ASCII text) take the fast path and read as encoding/json reads them.
// Bodies with escapes (json.Marshal escapes <, >, & and U+2028) decline.
func TestFastHeartbeatTakesAgentsBeats(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	fast := 0
	for i := range 3000 {
		h := randomHeartbeat(rng)
		data, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			data, _ = json.MarshalIndent(h, " ", "  ")
		}
		ref, err := referenceHeartbeat(data)
		if err != nil {
			t.Fatal(err)
		}
		var got Heartbeat
		ok := fastHeartbeat(data, &got)
		if !ok {
			if !bytes.Contains(data, []byte(`\`)) {
				t.Fatalf("fast path declined an agent's beat without escapes: %s", data)
			}
			continue
		}
		fast++
		if !reflect.DeepEqual(got, ref) {
			t.Fatalf("beat %d read differently:\n fast %#v\n  ref %#v", i, got, ref)
		}
	}
	if fast < 2000 {
		t.Fatalf("only %d of 3000 beats took the fast path", fast)
	}
	// The sample an agent sends most: fast, and validated the same.
	data, _ := json.Marshal(sampleHeartbeat("agent-1", 8))
	var h Heartbeat
	if !fastHeartbeat(data, &h) {
		t.Fatal("the sample beat declined")
	}
	if got, err := DecodeHeartbeat(data); err != nil || !reflect.DeepEqual(got, h) {
		t.Fatalf("DecodeHeartbeat: %v", err)
	}
}

func randomHeartbeat(rng *rand.Rand) Heartbeat {
	str := func() string {
		alphabet := []string{"a", "Z", "0", "-", " ", "é", "日本", "GPU-", "😀"}
		var b strings.Builder
		if rng.IntN(200) == 0 {
			b.WriteString([]string{"\t", "<", "\""}[rng.IntN(3)]) // escaped by json.Marshal
		}
		for range rng.IntN(12) {
			b.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	i64 := func() int64 {
		switch rng.IntN(4) {
		case 0:
			return math.MinInt64
		case 1:
			return math.MaxInt64
		default:
			return rng.Int64N(1<<40) - 1<<39
		}
	}
	u64 := func() uint64 {
		if rng.IntN(4) == 0 {
			return math.MaxUint64
		}
		return rng.Uint64N(1 << 40)
	}
	h := Heartbeat{AgentID: str(), Seq: u64(), BootID: str(), SentAt: i64(), AgentVersion: str(), DriverVersion: str(),
		CUDAVersion: str(), Simulated: rng.IntN(2) == 0, ProviderAddress: str()}
	if n := rng.IntN(10) - 1; n >= 0 {
		h.GPUs = []GPU{}
		for j := range n {
			g := GPU{Index: j, UUID: str(), Name: str(), Class: str(), MemoryTotalMiB: u64(), MemoryUsedMiB: u64(),
				UtilizationPct: rng.Uint32(), TemperatureC: rng.Uint32(), PowerMW: math.MaxUint32, PowerLimitMW: rng.Uint32(),
				ECCUncorrected: u64(), PCIeGen: int(i64()), PCIeWidth: rng.IntN(32), MIGEnabled: rng.IntN(2) == 0,
				Free: rng.IntN(2) == 0, LeaseID: str()}
			if rng.IntN(3) == 0 {
				g.Unsupported = []string{str(), str()}
			}
			h.GPUs = append(h.GPUs, g)
		}
	}
	if n := rng.IntN(4) - 1; n >= 0 {
		h.RTTms = map[string]int64{}
		for range n {
			h.RTTms[str()] = i64()
		}
	}
	if n := rng.IntN(4) - 1; n >= 0 {
		h.Leases = []RunningLease{}
		for range n {
			l := RunningLease{LeaseID: str(), State: str(), Driver: str(), StartedAt: i64(), Error: str()}
			if rng.IntN(2) == 0 {
				l.GPUs = []string{str()}
			} else if rng.IntN(2) == 0 {
				l.GPUs = []string{}
			}
			if rng.IntN(2) == 0 {
				c := int(i64())
				l.ExitCode = &c
			}
			if rng.IntN(2) == 0 {
				l.Pull = &PullProgress{Image: str(), Digest: str(), Done: i64(), Total: i64(), Cached: rng.IntN(2) == 0}
			}
			h.Leases = append(h.Leases, l)
		}
	}
	return h
}
