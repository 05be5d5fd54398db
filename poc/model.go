package poc

import (
	"crypto/sha256"
	"encoding/binary"
)

// The work function, per nonce (the reference is Model.computeReference):
//
//	Wₗ      = SHA-256(K_w‖l‖block) in counter mode, K_w = SHA-256(tagWeights‖seed)
//	x₀      = SHA-256(K_in‖nonce‖block) in counter mode, K_in = SHA-256(tagInput‖seed)
//	y       = xₗ · Wₗ            int8 × int8 → int32, Wₗ is Dim×Dim
//	xₗ₊₁[j] = requant(y[j])      back to int8
//	digest  = SHA-256(tagOutput‖seed‖nonce‖x_L)
//
// with requant(y) = int8(q ⊕ (q >> 8)) where q = y >> 8 (arithmetic shifts,
// then the low 8 bits). Why this requantisation:
//   - The shift by 8 (a floor division) breaks linearity modulo 2^k. With no
//     shift the network would be a chain of linear maps mod 256 that collapses
//     to one matrix: a Layers× shortcut.
//   - Keeping the low 8 bits (wrapping) keeps activations spread over all of
//     int8: y has σ ≈ √Dim·74² ≈ 2^16.4 at Dim 256, so bits 8..15 are
//     uniform, and nothing saturates or shrinks from layer to layer (a
//     clamp would, and a collapsed activation is a shortcut).
//   - Folding in bits 16..23 makes the result depend on bits 8..23 of the
//     sum, bit 23 included, so a 16-bit wrapping accumulator is not enough:
//     the prover must do the int32 accumulation tensor cores do. The fold correlates with the
//     position of y, leaving a mild bias (each byte value 0.63–1.39× its
//     uniform frequency) that is the same at every layer: no drift, no
//     collapse (TestActivationsStayUniform).

// Model is the random-weight network for one (Params, Seed). Weight
// generation costs Layers·Dim² bytes of SHA-256 output, so build it once per
// seed and reuse it for every nonce. A Model is immutable and safe for
// concurrent use.
type Model struct {
	dim, layers int
	version     uint32
	seed        Seed
	// inputKey = SHA-256(tagInput‖seed) keys the per-nonce input stream;
	// v2 keys Philox with its first 8 bytes (philoxKey).
	inputKey  [32]byte
	philoxKey [2]uint32
	// outputKey is v2's: the first 24 bytes of SHA-256(tagOutputV2‖seed).
	outputKey [24]byte
	// w holds the weights row-major, w[l·Dim² + i·Dim + j] = Wₗ[i][j].
	w []int8
	// packed holds the weights biased to uint8 (w+128) three columns to a
	// uint64 in 21-bit lanes, triple-major: packed[(l·T + t)·Dim + i]
	// holds Wₗ[i][3t..3t+2]. See kernel.go.
	packed []uint64
	// colSum[l·Dim + j] = Σᵢ (Wₗ[i][j] + 128), for the bias correction.
	colSum []int32
}

// NewModel derives the network's weights from the seed.
func NewModel(p Params, seed Seed) (*Model, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	d, L := int(p.Dim), int(p.Layers)
	T := triples(d)
	m := &Model{
		dim: d, layers: L, version: p.Version, seed: seed,
		w:      make([]int8, L*d*d),
		packed: make([]uint64, L*T*d),
		colSum: make([]int32, L*d),
	}
	// Counter-mode SHA-256 under a per-seed key: each 44-byte message
	// (key, layer, block) fits one compression (≤ 55 bytes) and yields 32
	// weights, half the cost of hashing the tag and seed every time.
	var msg [32 + 4 + 8]byte
	tw, ti := tagWeights, tagInput
	if m.version == Version2 {
		tw, ti = tagWeightsV2, tagInputV2
		ok := sha256.Sum256(append([]byte(tagOutputV2), seed[:]...))
		copy(m.outputKey[:], ok[:])
	}
	wk := sha256.Sum256(append([]byte(tw), seed[:]...))
	copy(msg[:], wk[:])
	m.inputKey = sha256.Sum256(append([]byte(ti), seed[:]...))
	m.philoxKey = [2]uint32{binary.LittleEndian.Uint32(m.inputKey[0:]), binary.LittleEndian.Uint32(m.inputKey[4:])}
	// v2 draws the weights from Philox too, under its own key and tag:
	// building the model is most of a verification, and Philox makes it
	// ~4× cheaper than SHA-256 counter mode.
	wkey := [2]uint32{binary.LittleEndian.Uint32(wk[0:]), binary.LittleEndian.Uint32(wk[4:])}
	for l := 0; l < L; l++ {
		binary.BigEndian.PutUint32(msg[32:], uint32(l))
		lw := m.w[l*d*d : (l+1)*d*d]
		if m.version == Version2 {
			for blk := 0; blk*16 < len(lw); blk++ {
				out := philox4x32([4]uint32{uint32(blk), uint32(l), 0, philoxWeightTag}, wkey)
				for k, w := range out {
					for b := 0; b < 4; b++ {
						lw[blk*16+4*k+b] = int8(w >> (8 * b))
					}
				}
			}
		} else {
			for blk := 0; blk*32 < len(lw); blk++ {
				binary.BigEndian.PutUint64(msg[36:], uint64(blk))
				out := sha256.Sum256(msg[:])
				for k := 0; k < 32 && blk*32+k < len(lw); k++ {
					lw[blk*32+k] = int8(out[k])
				}
			}
		}
		cs := m.colSum[l*d : (l+1)*d]
		for i := 0; i < d; i++ {
			for j, v := range lw[i*d : (i+1)*d] {
				cs[j] += int32(uint8(v) ^ 0x80) // v + 128 in [0, 255]
			}
		}
		// Pack triple-major so the writes are sequential; a missing third
		// column (Dim not a multiple of 3) packs as zero and is never read.
		lp := m.packed[l*T*d : (l+1)*T*d]
		for t := 0; t < T; t++ {
			out := lp[t*d : (t+1)*d]
			for i := range out {
				row := lw[i*d : (i+1)*d]
				var v uint64
				for k := 0; k < 3 && 3*t+k < d; k++ {
					v |= uint64(uint8(row[3*t+k])^0x80) << (laneBits * k)
				}
				out[i] = v
			}
		}
	}
	return m, nil
}

// Seed returns the seed the model was built from.
func (m *Model) Seed() Seed { return m.seed }

// requant maps an int32 layer sum back to int8 (see the comment above).
func requant(y int32) int8 {
	q := y >> 8
	return int8(q ^ q>>8)
}

// philoxTag fills the counter's last word: with it and the block index
// fixed, running Philox backwards from an output the prover would like (it
// is a bijection, and its key is public once the seed is) lands on a
// usable counter with probability 2⁻⁶⁰ or less.
const philoxTag = 0x68777632 // "hwv2"

// philoxWeightTag is the weights' counter tag (counter: block, layer, 0,
// tag), so no weight block shares a counter with an input block.
const philoxWeightTag = 0x68777757 // "hwwW"

// input fills dst with the nonce's input vector. v1: SHA-256(inputKey‖
// nonce‖block) in counter mode, one compression per 32 values. v2:
// Philox4x32-10 under philoxKey of the counter (nonce low, nonce high,
// block, philoxTag), 16 values per block, little-endian.
func (m *Model) input(nonce uint64, dst []int8) {
	if m.version == Version2 {
		for blk := 0; blk*16 < len(dst); blk++ {
			out := philox4x32([4]uint32{uint32(nonce), uint32(nonce >> 32), uint32(blk), philoxTag}, m.philoxKey)
			for k, w := range out {
				for b := 0; b < 4 && blk*16+4*k+b < len(dst); b++ {
					dst[blk*16+4*k+b] = int8(w >> (8 * b))
				}
			}
		}
		return
	}
	var msg [32 + 8 + 4]byte
	copy(msg[:], m.inputKey[:])
	binary.BigEndian.PutUint64(msg[32:], nonce)
	for blk := 0; blk*32 < len(dst); blk++ {
		binary.BigEndian.PutUint32(msg[40:], uint32(blk))
		out := sha256.Sum256(msg[:])
		for k := 0; k < 32 && blk*32+k < len(dst); k++ {
			dst[blk*32+k] = int8(out[k])
		}
	}
}

// outputPrefixLen is the length of tagOutput‖seed‖nonce.
const outputPrefixLen = len(tagOutput) + 32 + 8

// v2Fold is how many bytes v2 folds the last activations into, and
// v2DigestLen its digest's message: outputKey‖u64(nonce)‖fold, 48 bytes,
// one SHA-256 compression (a block holds 55 bytes of message).
const (
	v2Fold      = 16
	v2DigestLen = 24 + 8 + v2Fold
)

// digestBufLen is the scratch a digest needs for a Dim-wide network.
func digestBufLen(dim int) int { return max(outputPrefixLen+dim, v2DigestLen) }

// digest hashes the last layer's activations act (int8 values as bytes)
// into the nonce's digest, using buf (digestBufLen) as scratch. v1:
// SHA-256(tagOutput‖seed‖nonce‖act). v2: SHA-256(outputKey‖nonce‖fold),
// fold[i mod 16] ^= act[i]: every activation counts, so the whole last
// layer must be computed, at the cost of one compression.
func (m *Model) digest(nonce uint64, act []byte, buf []byte) [32]byte {
	if m.version == Version2 {
		b := buf[:v2DigestLen]
		copy(b, m.outputKey[:])
		binary.BigEndian.PutUint64(b[24:], nonce)
		fold := b[32:]
		clear(fold)
		for i, v := range act {
			fold[i%v2Fold] ^= v
		}
		return sha256.Sum256(b)
	}
	b := buf[:outputPrefixLen+len(act)]
	m.putOutputPrefix(b, nonce)
	copy(b[outputPrefixLen:], act)
	return sha256.Sum256(b)
}

// putOutputPrefix writes tagOutput‖seed‖nonce at the start of buf.
func (m *Model) putOutputPrefix(buf []byte, nonce uint64) {
	copy(buf, tagOutput)
	copy(buf[len(tagOutput):], m.seed[:])
	binary.BigEndian.PutUint64(buf[len(tagOutput)+32:], nonce)
}

// Compute is the reference work function: a plain triple loop, obviously
// correct and slow. The fast kernel must agree with it bit for bit (the
// tests check that, and the golden vectors pin it).
func (m *Model) Compute(nonce uint64) [32]byte {
	d := m.dim
	x := make([]int8, d)
	y := make([]int8, d)
	m.input(nonce, x)
	for l := 0; l < m.layers; l++ {
		m.layerRef(l, x, y)
		x, y = y, x
	}
	act := make([]byte, d)
	for i, v := range x {
		act[i] = byte(v)
	}
	return m.digest(nonce, act, make([]byte, digestBufLen(d)))
}

// layerRef is one layer by the plain loop: y = requant(x · Wₗ).
func (m *Model) layerRef(l int, x, y []int8) {
	d := m.dim
	w := m.w[l*d*d : (l+1)*d*d]
	for j := 0; j < d; j++ {
		var acc int32
		for i := 0; i < d; i++ {
			acc += int32(x[i]) * int32(w[i*d+j])
		}
		y[j] = requant(acc)
	}
}

// Compute builds the model for seed and evaluates one nonce with the
// reference loop. Convenient for tests and tools; a verifier or prover
// should build the Model once.
func Compute(p Params, seed Seed, nonce uint64) ([32]byte, error) {
	m, err := NewModel(p, seed)
	if err != nil {
		return [32]byte{}, err
	}
	return m.Compute(nonce), nil
}
