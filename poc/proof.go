package poc

import (
	"encoding/binary"
	"fmt"
)

// Proof is what a provider submits for an epoch: the valid nonces it
// found, strictly ascending.
type Proof struct {
	// Version is the work-function version the nonces were computed with.
	Version uint32
	// Nonces are the valid nonces, strictly ascending.
	Nonces []uint64
}

// MaxEncodedSize returns the largest encoding a proof under p can have:
// version and count (≤ 10 bytes each as uvarints) plus ≤ 10 bytes a nonce.
func MaxEncodedSize(p Params) int { return 20 + 10*int(p.MaxProofNonces) }

// MarshalBinary encodes the proof compactly: uvarint version, uvarint
// count, the first nonce, then the gaps between consecutive nonces (≥ 1),
// all uvarints. Around 3 bytes a nonce at production difficulty, sorted
// by construction. Unsorted or duplicate nonces cannot be encoded.
func (pr Proof) MarshalBinary() ([]byte, error) {
	buf := make([]byte, 0, 20+3*len(pr.Nonces))
	buf = binary.AppendUvarint(buf, uint64(pr.Version))
	buf = binary.AppendUvarint(buf, uint64(len(pr.Nonces)))
	var prev uint64
	for i, n := range pr.Nonces {
		if i > 0 {
			switch {
			case n == prev:
				return nil, fmt.Errorf("%w: %d", ErrDuplicateNonce, n)
			case n < prev:
				return nil, fmt.Errorf("%w: %d after %d", ErrUnsortedNonces, n, prev)
			}
			buf = binary.AppendUvarint(buf, n-prev)
		} else {
			buf = binary.AppendUvarint(buf, n)
		}
		prev = n
	}
	return buf, nil
}

// UnmarshalBinary decodes with the package-wide cap (MaxProofNoncesCap);
// use DecodeProof to apply a Params's tighter limits.
func (pr *Proof) UnmarshalBinary(data []byte) error {
	return decodeProof(data, MaxProofNoncesCap, pr)
}

// DecodeProof decodes a proof under p's limits: the size is checked before
// parsing and the count before allocating, so hostile input costs at most
// a pass over MaxEncodedSize(p) bytes.
func DecodeProof(p Params, data []byte) (Proof, error) {
	var pr Proof
	if err := p.Validate(); err != nil {
		return pr, err
	}
	if len(data) > MaxEncodedSize(p) {
		return pr, fmt.Errorf("%w: %d bytes > %d", ErrProofTooLarge, len(data), MaxEncodedSize(p))
	}
	err := decodeProof(data, int(p.MaxProofNonces), &pr)
	return pr, err
}

// uvarint reads one canonical uvarint: overlong encodings are malformed, so
// every proof has exactly one encoding (the chain hashes transactions).
func uvarint(data []byte) (uint64, int, error) {
	v, n := binary.Uvarint(data)
	if n <= 0 {
		return 0, 0, fmt.Errorf("%w: bad uvarint", ErrMalformed)
	}
	var tmp [binary.MaxVarintLen64]byte
	if binary.PutUvarint(tmp[:], v) != n {
		return 0, 0, fmt.Errorf("%w: non-canonical uvarint", ErrMalformed)
	}
	return v, n, nil
}

func decodeProof(data []byte, maxNonces int, pr *Proof) error {
	*pr = Proof{}
	if len(data) > 20+10*maxNonces {
		return fmt.Errorf("%w: %d bytes", ErrProofTooLarge, len(data))
	}
	ver, k, err := uvarint(data)
	if err != nil {
		return err
	}
	data = data[k:]
	if ver > 1<<32-1 {
		return fmt.Errorf("%w: version %d", ErrWrongVersion, ver)
	}
	count, k, err := uvarint(data)
	if err != nil {
		return err
	}
	data = data[k:]
	switch {
	case count == 0:
		return ErrEmptyProof
	case count > uint64(maxNonces):
		return fmt.Errorf("%w: %d nonces > %d", ErrProofTooLarge, count, maxNonces)
	case count > uint64(len(data)):
		// Every nonce takes at least one byte: reject before allocating.
		return fmt.Errorf("%w: %d nonces in %d bytes", ErrMalformed, count, len(data))
	}
	nonces := make([]uint64, count)
	var prev uint64
	for i := range nonces {
		v, k, err := uvarint(data)
		if err != nil {
			return err
		}
		data = data[k:]
		if i > 0 {
			if v == 0 {
				return fmt.Errorf("%w: %d", ErrDuplicateNonce, prev)
			}
			if prev+v < prev {
				return fmt.Errorf("%w: gap overflows", ErrNonceOutOfRange)
			}
			v += prev
		}
		nonces[i] = v
		prev = v
	}
	if len(data) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(data))
	}
	pr.Version = uint32(ver)
	pr.Nonces = nonces
	return nil
}
