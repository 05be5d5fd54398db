package poc

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
)

// Domain-separation tags. Every hash in the package starts with one, so an
// output of one role (a seed, a weight block, an input, a digest, a sample)
// can never be replayed as another.
const (
	tagSeed    = "highway/poc/v1/seed"
	tagWeights = "highway/poc/v1/weights"
	tagInput   = "highway/poc/v1/input"
	tagOutput  = "highway/poc/v1/output"
	tagSample  = "highway/poc/v1/sample"

	// Work function v2's own domains: its networks and digests never
	// coincide with v1's for the same seed.
	tagWeightsV2 = "highway/poc/v2/weights"
	tagInputV2   = "highway/poc/v2/input"
	tagOutputV2  = "highway/poc/v2/output"
)

// Seed is the 32-byte challenge an epoch's work is bound to.
type Seed [32]byte

// String returns the seed in hex.
func (s Seed) String() string { return hex.EncodeToString(s[:]) }

// DeriveSeed binds an epoch's work to the block hash at the epoch's start
// (unknown before that block, so no precomputation), the lease, the epoch
// number and the provider's address (so no replay across any of them).
// Variable-length fields are length-prefixed so no two distinct inputs share
// an encoding.
func DeriveSeed(blockHash []byte, leaseID, epoch uint64, provider []byte) Seed {
	h := sha256.New()
	var n [8]byte
	writeBytes := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	writeBytes([]byte(tagSeed))
	writeBytes(blockHash)
	binary.BigEndian.PutUint64(n[:], leaseID)
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], epoch)
	h.Write(n[:])
	writeBytes(provider)
	var s Seed
	h.Sum(s[:0])
	return s
}
