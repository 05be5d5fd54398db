package gpuprover

import (
	"encoding/binary"

	"github.com/highway-compute/highway/poc"
	"github.com/highway-compute/highway/provider-agent/cuda"
)

// argsSize is sizeof(Args) in kernels/poc_v2.cu, and the offsets below its
// fields' under the C layout rules (8-byte members 8-aligned).
const argsSize = 112

// encodeArgs lays out the kernel's Args struct.
func encodeArgs(weights uint64, in poc.AccelInputs, start uint64, count uint32, nonces, threshold, digests, found, nfound uint64, capacity uint32) []byte {
	a := make([]byte, argsSize)
	le := binary.LittleEndian
	le.PutUint64(a[0:], weights)
	le.PutUint32(a[8:], in.Layers)
	le.PutUint32(a[12:], in.PhiloxKey[0])
	le.PutUint32(a[16:], in.PhiloxKey[1])
	for i := 0; i < 6; i++ { // ok[6] at 20: the key as big-endian words
		le.PutUint32(a[20+4*i:], binary.BigEndian.Uint32(in.OutputKey[4*i:]))
	}
	le.PutUint64(a[48:], start)
	le.PutUint32(a[56:], count)
	le.PutUint64(a[64:], nonces)
	le.PutUint64(a[72:], threshold)
	le.PutUint64(a[80:], digests)
	le.PutUint64(a[88:], found)
	le.PutUint64(a[96:], nfound)
	le.PutUint32(a[104:], capacity)
	return a
}

// launch runs the kernel over count nonces (start, start+1, … or the
// device array nonces) and returns the valid ones, unordered. capacity is
// the expected number with room to spare; a launch that finds more is run
// again with room for all of them.
func (b *Backend) launch(k *kernel, m *poc.Model, start uint64, count uint32, nonces, threshold, digests uint64, capacity int) ([]uint64, error) {
	in := m.AccelInputs()
	for {
		fb, err := b.buffer("found", 8*capacity)
		if err != nil {
			return nil, err
		}
		nb, err := b.buffer("nfound", 4)
		if err != nil {
			return nil, err
		}
		if err := nb.Write(make([]byte, 4)); err != nil {
			return nil, err
		}
		args := encodeArgs(b.weights.Addr(), in, start, count, nonces, threshold, digests, fb.Addr(), nb.Addr(), uint32(capacity))
		grid := (int(count) + k.v.tile() - 1) / k.v.tile()
		if err := k.fn.Launch([3]uint32{uint32(grid), 1, 1}, [3]uint32{uint32(k.v.threads()), 1, 1}, uint32(k.v.shared()), cuda.Raw(args)); err != nil {
			return nil, err
		}
		var nf [4]byte
		if err := nb.Read(nf[:]); err != nil {
			return nil, err
		}
		n := int(binary.LittleEndian.Uint32(nf[:]))
		if n > capacity {
			capacity = n
			continue
		}
		raw := make([]byte, 8*n)
		if err := fb.Read(raw); err != nil {
			return nil, err
		}
		out := make([]uint64, n)
		for i := range out {
			out[i] = binary.LittleEndian.Uint64(raw[8*i:])
		}
		return out, nil
	}
}
