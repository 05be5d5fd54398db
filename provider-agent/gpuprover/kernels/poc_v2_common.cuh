// Shared by the work function v2 kernels (poc_v2.cu for sm_80 and newer,
// poc_v2_sm90a.cu for Hopper's wgmma): the input generator, SHA-256, the
// requantisation, the kernel arguments and the digest step, so both
// kernels compute the same function as poc.Model.Compute (poc/model.go).
#pragma once
#include <stdint.h>

#define TAG_INPUT 0x68777632u  // "hwv2", poc.philoxTag
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u


__device__ __forceinline__ uint4 philox4x32(uint4 c, uint32_t k0, uint32_t k1) {
#pragma unroll
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint32_t hi0 = __umulhi(PHILOX_M0, c.x), lo0 = PHILOX_M0 * c.x;
        uint32_t hi1 = __umulhi(PHILOX_M1, c.z), lo1 = PHILOX_M1 * c.z;
        c = make_uint4(hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0);
    }
    return c;
}

__constant__ uint32_t SHA_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

__device__ __forceinline__ uint32_t rotr(uint32_t x, int n) { return __funnelshift_r(x, x, n); }

// sha256_one compresses one padded 64-byte block (w, big-endian words) from
// the initial state into h.
__device__ __forceinline__ void sha256_one(uint32_t w[16], uint32_t h[8]) {
    uint32_t a = 0x6a09e667, b = 0xbb67ae85, c = 0x3c6ef372, d = 0xa54ff53a;
    uint32_t e = 0x510e527f, f = 0x9b05688c, g = 0x1f83d9ab, hh = 0x5be0cd19;
#pragma unroll
    for (int i = 0; i < 64; i++) {
        uint32_t wi;
        if (i < 16) {
            wi = w[i];
        } else {
            uint32_t w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
            uint32_t s0 = rotr(w15, 7) ^ rotr(w15, 18) ^ (w15 >> 3);
            uint32_t s1 = rotr(w2, 17) ^ rotr(w2, 19) ^ (w2 >> 10);
            wi = w[i & 15] + s0 + w[(i - 7) & 15] + s1;
            w[i & 15] = wi;
        }
        uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + SHA_K[i] + wi;
        uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
        uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + mj;
        hh = g; g = f; f = e; e = d + t1;
        d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] = 0x6a09e667 + a; h[1] = 0xbb67ae85 + b; h[2] = 0x3c6ef372 + c; h[3] = 0xa54ff53a + d;
    h[4] = 0x510e527f + e; h[5] = 0x9b05688c + f; h[6] = 0x1f83d9ab + g; h[7] = 0x5be0cd19 + hh;
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
    uint32_t s = (uint32_t)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

// requant2 packs two int32 sums into the two bytes byte1(y)^byte2(y): one
// byte permute gathers (y0.b1, y1.b1, y0.b2, y1.b2), one shift and one xor
// fold the halves, three instructions a pair.
__device__ __forceinline__ uint32_t requant2(int32_t y0, int32_t y1) {
    uint32_t p = __byte_perm((uint32_t)y0, (uint32_t)y1, 0x6251);
    return p ^ (p >> 16);
}

struct Args {
    const int8_t* weights;  // in the kernel's layout (gpu.go: mmaLayout, hopperLayout)
    uint32_t layers;
    uint32_t pk0, pk1;      // the Philox key of the inputs
    uint32_t ok[6];         // outputKey as big-endian words
    uint64_t start;         // first nonce when nonces is null
    uint32_t count;         // nonces to evaluate
    const uint64_t* nonces; // explicit nonces, or null for start, start+1, ...
    uint64_t threshold;     // a digest is valid when its first 8 bytes (BE) are ≤ this
    uint32_t* digests;      // 32 bytes per nonce, or null
    uint64_t* found;        // valid nonces (unordered)
    uint32_t* nfound;       // how many were valid (may exceed cap)
    uint32_t cap;           // room in found
};

// finish hashes one nonce's 16-byte fold (f: its four little-endian words)
// into its digest, stores the digest when asked, and records the nonce when
// the digest's first 8 bytes (big-endian) are at most the threshold.
__device__ __forceinline__ void finish(const Args& p, uint64_t idx, uint64_t nonce, uint4 f) {
    uint32_t w[16];
#pragma unroll
    for (int i = 0; i < 6; i++) w[i] = p.ok[i];
    w[6] = (uint32_t)(nonce >> 32);
    w[7] = (uint32_t)nonce;
    w[8] = __byte_perm(f.x, 0, 0x0123);
    w[9] = __byte_perm(f.y, 0, 0x0123);
    w[10] = __byte_perm(f.z, 0, 0x0123);
    w[11] = __byte_perm(f.w, 0, 0x0123);
    w[12] = 0x80000000u;
    w[13] = 0;
    w[14] = 0;
    w[15] = 48 * 8;
    uint32_t h[8];
    sha256_one(w, h);
    if (p.digests) {
        uint4* out = (uint4*)(p.digests + idx * 8);
        out[0] = make_uint4(__byte_perm(h[0], 0, 0x0123), __byte_perm(h[1], 0, 0x0123),
                            __byte_perm(h[2], 0, 0x0123), __byte_perm(h[3], 0, 0x0123));
        out[1] = make_uint4(__byte_perm(h[4], 0, 0x0123), __byte_perm(h[5], 0, 0x0123),
                            __byte_perm(h[6], 0, 0x0123), __byte_perm(h[7], 0, 0x0123));
    }
    uint64_t prefix = (uint64_t)h[0] << 32 | h[1];
    if (prefix <= p.threshold) {
        uint32_t k = atomicAdd(p.nfound, 1u);
        if (k < p.cap) p.found[k] = nonce;
    }
}
