package poc

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
)

// MaxSampleSeedLen bounds the verifier's sampling randomness (a block hash
// or a VRF output is 32 bytes).
const MaxSampleSeedLen = 256

// Verify checks a proof for the epoch whose seed is seed, against target t.
// sampleSeed must be randomness the prover could not know when it
// submitted (on-chain: the hash of a block after the submission).
//
// Order, cheapest first, so a bad proof costs no work: params, target and
// sample seed; version; empty; too many nonces; every nonce in range,
// strictly ascending; count ≥ Required; then min(k, n) distinct nonces
// sampled and recomputed, all of which must be valid. A proof made for
// another lease, epoch, provider or block hash recomputes to unrelated
// digests and fails with ErrInvalidNonce (each sampled nonce survives with
// probability 1/D). Deterministic and single-threaded: every validator
// does identical work, bounded by VerifyCost(p).
func Verify(p Params, seed Seed, t Target, proof Proof, sampleSeed []byte) error {
	if err := checkInputs(p, t, sampleSeed); err != nil {
		return err
	}
	if err := checkNonces(p, t, proof); err != nil {
		return err
	}
	idx := Sample(sampleSeed, seed, len(proof.Nonces), int(p.SampleSize))
	m, err := NewModel(p, seed)
	if err != nil {
		return err
	}
	ws := newWorkspace(m.dim, len(idx))
	nonces := ws.nonces[:len(idx)]
	for i, j := range idx {
		nonces[i] = proof.Nonces[j]
	}
	m.evalBatch(ws, nonces, ws.digests[:len(idx)])
	th := threshold(t.Difficulty)
	for i := range nonces {
		if digestPrefix(&ws.digests[i]) > th {
			return fmt.Errorf("%w: nonce %d", ErrInvalidNonce, nonces[i])
		}
	}
	return nil
}

// CheckProof runs every check of Verify that needs no sample seed, in
// Verify's order: params and target; version; empty; too many nonces;
// every nonce in range and strictly ascending; count ≥ Required. The chain
// runs it when a proof arrives, so a proof that could never clear settles
// its epoch at once, and only the sampled recomputation waits for a later
// block's hash.
func CheckProof(p Params, t Target, proof Proof) error {
	if err := checkTarget(p, t); err != nil {
		return err
	}
	return checkNonces(p, t, proof)
}

// checkNonces is CheckProof after the params and target checks.
func checkNonces(p Params, t Target, proof Proof) error {
	if proof.Version != p.Version {
		return fmt.Errorf("%w: proof version %d, params %d", ErrWrongVersion, proof.Version, p.Version)
	}
	n := len(proof.Nonces)
	if n == 0 {
		return ErrEmptyProof
	}
	if n > int(p.MaxProofNonces) {
		return fmt.Errorf("%w: %d nonces > %d", ErrProofTooLarge, n, p.MaxProofNonces)
	}
	maxN := p.maxNonce()
	for i, v := range proof.Nonces {
		if v > maxN {
			return fmt.Errorf("%w: %d > %d", ErrNonceOutOfRange, v, maxN)
		}
		if i > 0 {
			switch prev := proof.Nonces[i-1]; {
			case v == prev:
				return fmt.Errorf("%w: %d", ErrDuplicateNonce, v)
			case v < prev:
				return fmt.Errorf("%w: %d after %d", ErrUnsortedNonces, v, prev)
			}
		}
	}
	if uint64(n) < t.Required {
		return fmt.Errorf("%w: %d < %d", ErrInsufficientWork, n, t.Required)
	}
	return nil
}

// VerifyBytes decodes an encoded proof under p's limits and verifies it.
func VerifyBytes(p Params, seed Seed, t Target, data []byte, sampleSeed []byte) error {
	if err := checkInputs(p, t, sampleSeed); err != nil {
		return err
	}
	proof, err := DecodeProof(p, data)
	if err != nil {
		return err
	}
	return Verify(p, seed, t, proof, sampleSeed)
}

// checkInputs validates everything Verify takes from the chain rather than
// from the prover: params, then target, then the sample seed.
func checkInputs(p Params, t Target, sampleSeed []byte) error {
	if err := checkTarget(p, t); err != nil {
		return err
	}
	if len(sampleSeed) == 0 || len(sampleSeed) > MaxSampleSeedLen {
		return fmt.Errorf("%w: %d bytes", ErrBadSampleSeed, len(sampleSeed))
	}
	return nil
}

// checkTarget validates the params, then the target against them.
func checkTarget(p Params, t Target) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if t.Difficulty < p.MinDifficulty || t.Required == 0 || t.Required > uint64(p.MaxProofNonces) {
		return fmt.Errorf("%w: difficulty %d (min %d), required %d (max %d)",
			ErrBadTarget, t.Difficulty, p.MinDifficulty, t.Required, p.MaxProofNonces)
	}
	return nil
}

// Sample picks min(k, n) distinct indices in [0, n), ascending (none
// when n or k is not positive),
// from a SHA-256 stream keyed by the sample seed, the epoch seed and n.
// Floyd's algorithm makes exactly min(k, n) draws (no rejection loop, so
// the cost is bounded); each draw maps 64 random bits to [0, j] with a
// 128-bit multiply, biased by at most (j+1)/2⁶⁴ < 2⁻⁴⁷ for j < 2¹⁷.
// The proof's contents other than n are not hashed: the prover must not be
// able to steer the sample by reordering or padding.
func Sample(sampleSeed []byte, seed Seed, n, k int) []int {
	if n <= 0 || k <= 0 {
		return nil
	}
	k = min(k, n)
	h := sha256.New()
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(len(tagSample)))
	h.Write(b[:])
	h.Write([]byte(tagSample))
	binary.BigEndian.PutUint64(b[:], uint64(len(sampleSeed)))
	h.Write(b[:])
	h.Write(sampleSeed)
	h.Write(seed[:])
	binary.BigEndian.PutUint64(b[:], uint64(n))
	h.Write(b[:])
	var msg [32 + 8]byte
	h.Sum(msg[:0])
	out := make([]int, 0, k)
	draw := 0
	for j := n - k; j < n; j++ {
		binary.BigEndian.PutUint64(msg[32:], uint64(draw))
		draw++
		r := sha256.Sum256(msg[:])
		t, _ := bits.Mul64(binary.BigEndian.Uint64(r[:8]), uint64(j+1))
		pick := int(t)
		if slices.Contains(out, pick) {
			pick = j
		}
		out = append(out, pick)
	}
	slices.Sort(out)
	return out
}

// VerifyCost bounds a verification's work in int8 MAC-equivalents, for
// gas: k recomputed nonces, plus weight generation (Layers·Dim² bytes of
// SHA-256 at ≈ 2.4 ns a byte, ≈ 12 MACs of the CPU kernel at 5 GMAC/s;
// counted as 16), plus parsing (≤ 10 bytes a nonce, counted as 1 MAC a
// byte).
func VerifyCost(p Params) uint64 {
	w := uint64(p.Layers) * uint64(p.Dim) * uint64(p.Dim)
	return uint64(p.SampleSize)*p.MACsPerNonce() + 16*w + 10*uint64(p.MaxProofNonces)
}
