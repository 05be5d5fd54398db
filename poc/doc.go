// Package poc implements Highway's Proof-of-Compute: an exact int8 work
// function, a batched parallel prover behind a Backend interface, a cheap
// sampled verifier and the calibration that turns a lease (GPU class, GPU
// count, proof window) into a per-epoch difficulty and required count.
//
// The package is pure and deterministic: no clock, no network, no floats, no
// unseeded randomness. The caller owns the clock (a context deadline stops
// the prover) and the randomness (the verifier's sample seed comes from the
// chain). The full specification, with every parameter and the arithmetic
// behind it, is docs/poc.md; keep the two in step.
package poc
