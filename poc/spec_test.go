package poc

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The spec vectors: docs/poc.md specifies every byte of the seed
// derivation, the sampler, the proof encoding and the epoch target; these
// files let a second implementation check itself against this one. Each
// test rebuilds its file's lines from the inputs below and compares them
// with the committed file (-update rewrites it, only with a version bump
// or a fix to a documented bug).

// checkGolden compares lines with testdata/name, or writes them with
// -update.
func checkGolden(t *testing.T, name, header string, lines []string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	want := "# " + header + "\n" + strings.Join(lines, "\n") + "\n"
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(want, "\n")
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("%s line %d:\n file %s\n code %s", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s: %d lines in the file, %d from the code", path, len(gl), len(wl))
	}
}

// specHash is SHA-256 of a label: the vectors' block hashes and sample
// seeds, reproducible from their description.
func specHash(label string) []byte {
	h := sha256.Sum256([]byte(label))
	return h[:]
}

// TestGoldenSeed pins DeriveSeed, including the seeds golden.txt uses
// (testSeed(i) = DeriveSeed("block-i", i, 7, "provider")).
func TestGoldenSeed(t *testing.T) {
	type in struct {
		block         []byte
		lease, epoch  uint64
		provider      []byte
		blockL, provL string
	}
	cases := []in{
		{[]byte("block-0"), 0, 7, []byte("provider"), "", ""},
		{[]byte("block-1"), 1, 7, []byte("provider"), "", ""},
		{specHash("block 100"), 42, 0, specHash("provider a")[:20], "", ""},
		{specHash("block 100"), 42, 1, specHash("provider a")[:20], "", ""},
		{specHash("block 100"), 43, 0, specHash("provider a")[:20], "", ""},
		{specHash("block 100"), 42, 0, specHash("provider b")[:20], "", ""},
		{nil, 0, 0, nil, "", ""},
		{[]byte("has"), 1, 2, []byte("hprov"), "", ""},
		{[]byte("hash"), 1, 2, []byte("prov"), "", ""},
		{specHash("block 101"), 1<<64 - 1, 1<<64 - 1, specHash("provider a"), "", ""},
	}
	var lines []string
	for _, c := range cases {
		s := DeriveSeed(c.block, c.lease, c.epoch, c.provider)
		lines = append(lines, fmt.Sprintf("%s %d %d %s -> %s", hexOrDash(c.block), c.lease, c.epoch, hexOrDash(c.provider), s))
	}
	checkGolden(t, "seed.txt", "DeriveSeed: block_hash(hex, - for empty) lease epoch provider(hex, - for empty) -> seed(hex)", lines)
}

func hexOrDash(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

// TestGoldenSample pins Sample for many (n, k, sample seed), including
// n > 40 where Floyd's collisions start to matter, n ≤ k (everything is
// picked) and the largest n a proof can have.
func TestGoldenSample(t *testing.T) {
	type in struct {
		n, k   int
		sample []byte
		seed   Seed
	}
	var cases []in
	for _, n := range []int{1, 2, 39, 40, 41, 42, 64, 100, 1200, 2730, 3000, 4096, 65536} {
		cases = append(cases, in{n, 40, specHash(fmt.Sprintf("judge block %d", n)), testSeed(1)})
	}
	cases = append(cases,
		in{3000, 40, specHash("judge block 3000"), testSeed(2)},
		in{3000, 1, specHash("judge block 3000"), testSeed(1)},
		in{3000, 256, specHash("judge block 3000"), testSeed(1)},
		in{300, 256, []byte{0}, testSeed(3)},
		in{256, 256, []byte{0}, testSeed(3)},
		in{50, 40, []byte("x"), testSeed(4)},
		in{45, 40, []byte(strings.Repeat("s", MaxSampleSeedLen)), testSeed(5)},
	)
	// Several seeds at one small n, where Floyd's "already picked: take j"
	// branch is taken often.
	for i := 0; i < 8; i++ {
		cases = append(cases, in{48, 40, specHash(fmt.Sprintf("collide %d", i)), testSeed(6)})
	}
	var lines []string
	for _, c := range cases {
		idx := Sample(c.sample, c.seed, c.n, c.k)
		parts := make([]string, len(idx))
		for i, v := range idx {
			parts[i] = fmt.Sprint(v)
		}
		lines = append(lines, fmt.Sprintf("%d %d %s %s -> %s", c.n, c.k, hex.EncodeToString(c.sample), c.seed, strings.Join(parts, ",")))
	}
	checkGolden(t, "sample.txt", "Sample: n k sample_seed(hex) epoch_seed(hex) -> indices (ascending, comma-separated)", lines)
}

// errName names a package sentinel for the vectors.
func errName(err error) string {
	for _, e := range []struct {
		err  error
		name string
	}{
		{ErrBadParams, "ErrBadParams"}, {ErrWrongVersion, "ErrWrongVersion"}, {ErrEmptyProof, "ErrEmptyProof"},
		{ErrProofTooLarge, "ErrProofTooLarge"}, {ErrMalformed, "ErrMalformed"}, {ErrDuplicateNonce, "ErrDuplicateNonce"},
		{ErrUnsortedNonces, "ErrUnsortedNonces"}, {ErrNonceOutOfRange, "ErrNonceOutOfRange"}, {ErrInvalidNonce, "ErrInvalidNonce"},
		{ErrInsufficientWork, "ErrInsufficientWork"}, {ErrBadTarget, "ErrBadTarget"}, {ErrBadSampleSeed, "ErrBadSampleSeed"},
		{ErrUnknownClass, "ErrUnknownClass"}, {ErrEpochTooSmall, "ErrEpochTooSmall"}, {ErrOverflow, "ErrOverflow"},
	} {
		if errors.Is(err, e.err) {
			return e.name
		}
	}
	return "unexpected: " + err.Error()
}

// TestGoldenProofEncoding pins DecodeProof under DefaultParams, then
// CheckProof against a target, for valid encodings and for each rejection
// in the documented order.
func TestGoldenProofEncoding(t *testing.T) {
	p := v1(DefaultParams()) // the file's proofs are v1's (version byte 01)
	maxCount := func(n uint64) string { return hex.EncodeToString(appendUvarints(nil, 1, n)) }
	cases := []struct {
		label, data string
	}{
		{"one nonce 0", "010100"},
		{"two nonces 5 10", "01020505"},
		{"three nonces 5 7 300", "01030502a502"},
		{"the two largest 48-bit nonces", "0102feffffffffff3f01"},
		{"two nonces, second past 48 bits", "0102ffffffffffff3f01"},
		{"max uint64 nonce", "0101ffffffffffffffffff01"},
		{"empty input", ""},
		{"version only", "01"},
		{"count 0", "0100"},
		{"count over max_proof_nonces", maxCount(4097)},
		{"count over remaining bytes", "010300"},
		{"non-canonical uvarint", "01018000"},
		{"truncated uvarint", "010180"},
		{"trailing byte", "01010000"},
		{"gap 0 (duplicate)", "0102050" + "0"},
		{"sum overflows 64 bits", "0102ffffffffffffffffff0101"},
		{"version 2^32", "8080808010" + "0100"},
		{"version 2", "020100"},
		{"uvarint over 10 bytes", "01018080808080808080808001"},
	}
	target := Target{Difficulty: p.MinDifficulty, Required: 2}
	var lines []string
	for _, c := range cases {
		data, err := hex.DecodeString(c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.label, err)
		}
		line := fmt.Sprintf("%s | %s ->", c.label, hexOrDash(data))
		pr, err := DecodeProof(p, data)
		if err != nil {
			lines = append(lines, line+" decode "+errName(err))
			continue
		}
		parts := make([]string, len(pr.Nonces))
		for i, v := range pr.Nonces {
			parts[i] = fmt.Sprint(v)
		}
		line += fmt.Sprintf(" decode v%d [%s]", pr.Version, strings.Join(parts, ","))
		if err := CheckProof(p, target, pr); err != nil {
			line += " check " + errName(err)
		} else {
			line += " check ok"
		}
		lines = append(lines, line)
	}
	// The size limit is checked before parsing.
	big := make([]byte, MaxEncodedSize(p)+1)
	_, err := DecodeProof(p, big)
	lines = append(lines, fmt.Sprintf("max_encoded_size + 1 zero bytes | zeros(%d) -> decode %s", len(big), errName(err)))
	checkGolden(t, "proof.txt", fmt.Sprintf("DecodeProof under DefaultParams, then CheckProof with target D=%d R=%d: label | encoding(hex) -> result", target.Difficulty, target.Required), lines)
}

func appendUvarints(b []byte, vs ...uint64) []byte {
	for _, v := range vs {
		for v >= 0x80 {
			b = append(b, byte(v)|0x80)
			v >>= 7
		}
		b = append(b, byte(v))
	}
	return b
}

// TestGoldenTarget pins EpochTargetMilli for the class table's shapes.
func TestGoldenTarget(t *testing.T) {
	var lines []string
	for _, ps := range []struct {
		name string
		p    Params
	}{{"default", DefaultParams()}, {"dev", DevParams()}} {
		for _, c := range []struct{ milli, window uint64 }{
			{1000, 60}, {315, 60}, {122, 60}, {2274 * 8, 600}, {334 * 3, 97}, {1000, 1}, {1000, 2}, {122, 2}, {1, 1},
			{1 << 62, 1 << 20}, {1_000_000_000, 1 << 20}, // overflow in the rate, then in N
		} {
			tg, err := EpochTargetMilli(ps.p, c.milli, c.window)
			out := fmt.Sprintf("D=%d R=%d", tg.Difficulty, tg.Required)
			if err != nil {
				out = errName(err)
			}
			lines = append(lines, fmt.Sprintf("%s %d %d -> %s", ps.name, c.milli, c.window, out))
		}
	}
	checkGolden(t, "target.txt", "EpochTargetMilli: params milli_h100 window_seconds -> difficulty, required (or error)", lines)
}
