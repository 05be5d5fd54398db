package poc

// What an accelerator backend needs of a Model. The GPU prover
// (provider-agent/gpuprover) re-implements the work function in a CUDA
// kernel and must reproduce Model.Compute bit for bit; these accessors
// hand it the model's derived values so it never re-derives them (a second
// derivation is a second place for the two to disagree).

// AccelInputs is a model's work-function inputs for an accelerator.
type AccelInputs struct {
	Version, Dim, Layers uint32
	// PhiloxKey keys v2's input stream (counter: nonce lo, nonce hi,
	// block, PhiloxInputTag).
	PhiloxKey [2]uint32
	// OutputKey is the first 24 bytes of v2's digest message.
	OutputKey [24]byte
	// Weights is Wₗ[i][j] at l·Dim² + i·Dim + j: the model's own array,
	// shared, never to be written (a Model is immutable).
	Weights []int8
}

// AccelInputs returns the model's inputs for an accelerator, without
// copying.
func (m *Model) AccelInputs() AccelInputs {
	return AccelInputs{
		Version: m.version, Dim: uint32(m.dim), Layers: uint32(m.layers),
		PhiloxKey: m.philoxKey, OutputKey: m.outputKey,
		Weights: m.w,
	}
}

// Threshold is the largest valid digest prefix (its first 8 bytes,
// big-endian) for a difficulty; 0 for difficulty 0.
func Threshold(difficulty uint64) uint64 { return threshold(difficulty) }
