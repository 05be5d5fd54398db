package protocol

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// TestSigBatcherRejectsOnlyForgeries is the attack on batching: forged
// signatures (a flipped bit, another message, another agent's key)
// submitted among honest ones from many goroutines at once. Measured: how
// many forgeries pass (must be 0) and how many honest signatures a forgery
// in their batch drags down (must be 0).
func TestSigBatcherRejectsOnlyForgeries(t *testing.T) {
	b := NewSigBatcher(1, 16)
	defer b.Close()
	var keys []*voi.ExpandedPublicKey
	var privs []ed25519.PrivateKey
	for i := range 4 {
		priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i + 1)}, 32))
		x, err := voi.NewExpandedPublicKey(voi.PublicKey(priv.Public().(ed25519.PublicKey)))
		if err != nil {
			t.Fatal(err)
		}
		keys, privs = append(keys, x), append(privs, priv)
	}
	const senders, each = 16, 150
	var mu sync.Mutex
	forgedPassed, honestFailed, forged, honest := 0, 0, 0, 0
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				k := (g + i) % len(keys)
				msg := []byte(fmt.Sprintf("beat %d/%d", g, i))
				sig := ed25519.Sign(privs[k], msg)
				key := keys[k]
				bad := true
				switch (g*each + i) % 10 {
				case 0:
					sig[i%64] ^= 1 << (i % 8)
				case 1:
					msg = append(msg, '!')
				case 2:
					key = keys[(k+1)%len(keys)]
				default:
					bad = false
				}
				ok := b.Verify(key, msg, sig)
				mu.Lock()
				if bad {
					forged++
					if ok {
						forgedPassed++
					}
				} else {
					honest++
					if !ok {
						honestFailed++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st := b.Stats()
	t.Logf("%d forgeries among %d honest signatures: %d forgeries passed, %d honest refused; %d batches (%d signatures), %d alone, %d batches fell back",
		forged, honest, forgedPassed, honestFailed, st.Batches, st.Batched, st.Singles, st.Fallbacks)
	if forgedPassed != 0 || honestFailed != 0 {
		t.Fatalf("%d of %d forgeries passed, %d of %d honest signatures refused", forgedPassed, forged, honestFailed, honest)
	}
	if st.Batched+st.Singles != int64(forged+honest) {
		t.Fatalf("checked %d+%d, sent %d", st.Batched, st.Singles, forged+honest)
	}
	if st.Batches == 0 || st.Fallbacks == 0 {
		t.Fatalf("no batch formed or none failed (%+v): the batch path went untested", st)
	}
}

// TestSigBatcherAfterClose: a closed batcher still answers, on the
// caller's goroutine.
func TestSigBatcherAfterClose(t *testing.T) {
	b := NewSigBatcher(1, 4)
	b.Close()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	x, _ := voi.NewExpandedPublicKey(voi.PublicKey(priv.Public().(ed25519.PublicKey)))
	sig := ed25519.Sign(priv, []byte("m"))
	if !b.Verify(x, []byte("m"), sig) || b.Verify(x, []byte("n"), sig) {
		t.Fatal("closed batcher answered wrongly")
	}
}

// TestCheckPublicKeyRefusesWeakKeys: small-order points (anyone can forge
// for them) and non-canonical encodings are refused at enrollment; random
// keys pass.
func TestCheckPublicKeyRefusesWeakKeys(t *testing.T) {
	weak := map[string][]byte{
		"identity (order 1)":               append([]byte{1}, make([]byte, 31)...),
		"y = 0 (order 4)":                  make([]byte, 32),
		"y = -1 (order 2)":                 append([]byte{0xec}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...),
		"y = p+1 (non-canonical identity)": append([]byte{0xee}, append(bytes.Repeat([]byte{0xff}, 30), 0x7f)...),
		"short":                            make([]byte, 31),
	}
	for name, k := range weak {
		if err := CheckPublicKey(k); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	for i := range 200 {
		priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{byte(i)}, 32))
		if err := CheckPublicKey(priv.Public().(ed25519.PublicKey)); err != nil {
			t.Fatalf("random key refused: %v", err)
		}
	}
}

// TestReadLimited: a body of its declared length, of an unknown length,
// longer than declared, and over the limit by declaration or in fact.
func TestReadLimited(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 100)
	for _, c := range []struct {
		name      string
		declared  int64
		limit     int64
		want      int
		wantError error
	}{
		{"declared", 100, 1000, 100, nil},
		{"unknown length", -1, 1000, 100, nil},
		{"shorter than declared", 150, 1000, 100, nil},
		{"longer than declared", 40, 1000, 100, nil},
		{"declared over the limit", 2000, 1000, 0, ErrTooLarge},
		{"over the limit, undeclared", -1, 50, 0, ErrTooLarge},
		{"over the limit, declared under it", 40, 50, 0, ErrTooLarge},
		{"exactly the limit", 100, 100, 100, nil},
	} {
		got, err := readLimited(bytes.NewReader(body), c.declared, c.limit)
		if c.wantError != nil {
			if !errors.Is(err, c.wantError) {
				t.Errorf("%s: err %v, want %v", c.name, err, c.wantError)
			}
			continue
		}
		if err != nil || len(got) != c.want {
			t.Errorf("%s: %d bytes, %v; want %d", c.name, len(got), err, c.want)
		}
	}
}

// TestReleasedBodyLeavesBeatIntact: the heartbeat handler gives the body's
// buffer back as soon as the beat is decoded; the beat must not share a
// byte with it (the next request overwrites the buffer).
func TestReleasedBodyLeavesBeatIntact(t *testing.T) {
	k := newKey(t, "agent-1")
	v := &Verifier{Keys: keyStore(map[string]ed25519.PublicKey{k.id: k.pub}, nil), Nonces: NewMemoryNonceStore(16), Batch: NewSigBatcher(1, 8)}
	defer v.Batch.Close()
	sent := sampleHeartbeat(k.id, 8)
	r := signedRequest(t, &Signer{AgentID: k.id, Key: k.priv}, PathHeartbeat, sent)
	vr, got, err := v.VerifyHeartbeat(r)
	if err != nil {
		t.Fatal(err)
	}
	n := len(vr.Body)
	vr.Release()
	for range 4 {
		buf := getBody(n)
		for i := range buf {
			buf[i] = 'z'
		}
	}
	if !reflect.DeepEqual(got, sent) {
		t.Fatalf("the beat changed with its released body:\n got %#v\nsent %#v", got, sent)
	}
}
