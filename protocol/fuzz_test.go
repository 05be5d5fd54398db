package protocol

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecodeHeartbeat: hostile bodies never panic, every rejection wraps one
// of the three decode sentinels, and an accepted beat re-encodes to a body
// that decodes and validates again (what the server stores is well-formed).
func FuzzDecodeHeartbeat(f *testing.F) {
	good, _ := json.Marshal(sampleHeartbeat("agent-1", 8))
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"agent_id":"a","seq":1,"boot_id":"b","sent_at":1,"gpus":[{"index":0,"uuid":"GPU-1","name":"x","class":"X"}]}`))
	f.Add([]byte(`{"agent_id":"a","seq":1,"boot_id":"b","sent_at":1,"rtt_ms":{"r":-5}}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := DecodeHeartbeat(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		again, err := json.Marshal(h)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := DecodeHeartbeat(again); err != nil {
			t.Fatalf("accepted beat does not round-trip: %v", err)
		}
	})
}
