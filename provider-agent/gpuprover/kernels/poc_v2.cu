// Proof-of-Compute work function v2 on NVIDIA GPUs (sm_80 and newer).
//
// The source of kernels/poc_v2.ptx, which the provider agent embeds and
// hands to the CUDA driver at run time (no toolkit on the provider's
// machine). Rebuild the PTX with `make ptx` on a machine with nvcc; the
// Go side (gpu.go) must agree with the entry points and their parameters.
//
// Per nonce, exactly as poc.Model.Compute (poc/model.go) does it:
//   x0      = Philox4x32-10(key, (nonce lo, nonce hi, block, "hwv2")), 16 bytes a block
//   y       = x_l · W_l            int8 × int8 → exact int32 (tensor cores)
//   x_l+1   = byte1(y) ^ byte2(y)  the requantisation ((y>>8) ^ (y>>16), low 8 bits)
//   digest  = SHA-256(outputKey[0:24] ‖ BE64(nonce) ‖ fold16(x_L))
//
// One CTA takes a tile of TILE_M nonces through every layer with the
// activations in shared memory (they never leave the chip). The weights,
// pre-laid out by the host as W[l][chunk][n][64] (64 input rows at a time,
// column-major within the chunk so a B fragment is one 32-bit load), stream
// through a double-buffered shared-memory window with cp.async while the
// tensor cores work on the previous chunk. Integer MMA accumulates exactly
// in int32 (|y| ≤ Dim·128² < 2^31), so the GPU and the CPU agree bit for
// bit; the tests check that over 10^6 nonces.
#include "poc_v2_common.cuh"

#define PAD 16       // bytes of padding per shared row: conflict-free fragment loads
#define STAGES 3     // weight chunks in shared memory at once

__device__ __forceinline__ void mma_s8(int32_t c[4], const uint32_t a[4], uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ldsm4 loads four 8×16-byte matrices from shared memory, lane l giving
// the address of row l%8 of matrix l/8; register i gets matrix i in the
// mma fragment layout (row lane/4, bytes 4·(lane%4)..+3).
__device__ __forceinline__ void ldsm4(uint32_t r[4], const void* p) {
    uint32_t a = (uint32_t)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

// The CTA: WM×WN warps, each computing (16·RM rows) × 64 columns of a
// layer's output; TILE_M = 16·RM·WM nonces, WN = D/64.
template <int D, int RM, int WM>
__device__ __forceinline__ void poc_v2(const Args& p) {
    constexpr int WN = D / 64;
    constexpr int TILE_M = 16 * RM * WM;
    constexpr int THREADS = 32 * WM * WN;
    constexpr int AS = D + PAD;   // activation row stride
    constexpr int KC = D < 128 ? D : 128;  // input rows of W per shared-memory chunk
    constexpr int WS = KC + PAD;  // weight-chunk row stride
    constexpr int CHUNKS = D / KC;

    extern __shared__ __align__(16) uint8_t smem[];
    uint8_t* act0 = smem;
    uint8_t* act1 = smem + TILE_M * AS;
    uint8_t* wbuf = smem + 2 * TILE_M * AS;  // STAGES chunks of D × WS

    const int tid = threadIdx.x;
    const int lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int wm = warp / WN, wn = warp % WN;
    const uint64_t base = (uint64_t)blockIdx.x * TILE_M;

    const int total = (int)p.layers * CHUNKS;
    // Chunk q of the whole network: D rows × KC bytes, contiguous in global.
    auto load_chunk = [&](int q) {
        const int8_t* src = p.weights + (size_t)q * D * KC;
        uint8_t* dst = wbuf + (q % STAGES) * D * WS;
        for (int i = tid; i < D * (KC / 16); i += THREADS) {
            int n = i / (KC / 16), k16 = i % (KC / 16);
            cp_async16(dst + n * WS + k16 * 16, src + n * KC + k16 * 16);
        }
    };
    // Three stages: chunk q+2 is fetched while q is multiplied, so a fetch
    // has two chunks' time to come from L2, and one barrier a chunk does.
    load_chunk(0);
    cp_async_commit();
    if (total > 1) load_chunk(1);
    cp_async_commit();

    // The inputs: D/16 Philox blocks per nonce, written as little-endian words.
#pragma unroll
    for (int i = tid; i < TILE_M * (D / 16); i += THREADS) {
        int row = i / (D / 16), blk = i % (D / 16);
        uint64_t idx = base + row;
        uint64_t nonce = p.nonces ? (idx < p.count ? p.nonces[idx] : 0) : p.start + idx;
        uint4 v = philox4x32(make_uint4((uint32_t)nonce, (uint32_t)(nonce >> 32), (uint32_t)blk, TAG_INPUT), p.pk0, p.pk1);
        *(uint4*)(act0 + row * AS + blk * 16) = v;
    }

    int32_t acc[RM][8][4];
    uint8_t* cur = act0;
    uint8_t* nxt = act1;
    for (int q = 0; q < total; q++) {
        const int c = q % CHUNKS;
        cp_async_wait<1>();  // chunk q is here (only q+1 may be in flight)
        __syncthreads();     // ... for every thread; chunk q-1's buffer is free; last layer's output is written
        if (q + 2 < total) load_chunk(q + 2);
        cp_async_commit();   // possibly empty, to keep one group a chunk
        if (c == 0) {
#pragma unroll
            for (int r = 0; r < RM; r++)
#pragma unroll
                for (int j = 0; j < 8; j++) acc[r][j][0] = acc[r][j][1] = acc[r][j][2] = acc[r][j][3] = 0;
        }
        const uint8_t* wb = wbuf + (q % STAGES) * D * WS;
#pragma unroll
        for (int ks = 0; ks < KC; ks += 32) {
            // A: matrices (rows 0-7 | 8-15) × (bytes 0-15 | 16-31) of each
            // 16-row slab, in the order a0..a3 wants them.
            const int mi = lane >> 3, mr = lane & 7;
            uint32_t a[RM][4];
#pragma unroll
            for (int r = 0; r < RM; r++)
                ldsm4(a[r], cur + (wm * 16 * RM + r * 16 + mr + (mi & 1) * 8) * AS + c * KC + ks + (mi >> 1) * 16);
#pragma unroll
            for (int j = 0; j < 8; j += 2) {
                // B for columns j and j+1: (b0, b1) of j, then of j+1.
                uint32_t b[4];
                ldsm4(b, wb + (wn * 64 + j * 8 + mr + (mi >> 1) * 8) * WS + ks + (mi & 1) * 16);
#pragma unroll
                for (int r = 0; r < RM; r++) {
                    mma_s8(acc[r][j], a[r], b[0], b[1]);
                    mma_s8(acc[r][j + 1], a[r], b[2], b[3]);
                }
            }
        }
        if (c == CHUNKS - 1) {
            // The layer is complete: requantise into the other buffer.
#pragma unroll
            for (int r = 0; r < RM; r++) {
                uint8_t* orow = nxt + (wm * 16 * RM + r * 16 + g) * AS + wn * 64 + 2 * t;
#pragma unroll
                for (int j = 0; j < 8; j++) {
                    *(uint16_t*)(orow + j * 8) = (uint16_t)requant2(acc[r][j][0], acc[r][j][1]);
                    *(uint16_t*)(orow + 8 * AS + j * 8) = (uint16_t)requant2(acc[r][j][2], acc[r][j][3]);
                }
            }
            uint8_t* s = cur;
            cur = nxt;
            nxt = s;
        }
    }
    __syncthreads();  // the last layer's output is visible

    // The digest: fold the last activations to 16 bytes, one SHA-256 block.
    // What follows the fold is finish() (poc_v2_common.cuh) written out:
    // the committed poc_v2.ptx was built from this text, and a call, even
    // inlined, numbers the registers differently, so `make ptx` would no
    // longer reproduce it byte for byte. Call finish() here when the PTX is
    // next rebuilt on a GPU machine.
    for (int row = tid; row < TILE_M; row += THREADS) {
        uint64_t idx = base + row;
        if (idx >= p.count) continue;
        uint4 f = make_uint4(0, 0, 0, 0);
        const uint4* src = (const uint4*)(cur + row * AS);
#pragma unroll 4
        for (int i = 0; i < D / 16; i++) {
            uint4 v = src[i];
            f.x ^= v.x; f.y ^= v.y; f.z ^= v.z; f.w ^= v.w;
        }
        uint64_t nonce = p.nonces ? p.nonces[idx] : p.start + idx;
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
}

// The entry points: one per (Dim, rows per warp, warps along M, CTAs an
// SM should hold). The Go side picks by Dim and launches ceil(count /
// TILE_M) CTAs of THREADS. Two CTAs an SM let one hash and draw inputs
// while the other keeps the tensor cores busy.
#define ENTRY(D, RM, WM, MINB)                                                   \
    extern "C" __global__ void __launch_bounds__(32 * WM * (D / 64), MINB)       \
        poc_v2_d##D##_r##RM##_w##WM(Args p) { poc_v2<D, RM, WM>(p); }

ENTRY(64, 2, 4, 1)
ENTRY(128, 2, 4, 1)
ENTRY(256, 2, 4, 1)
ENTRY(256, 4, 2, 1)


// mma_peak measures what this card's tensor cores give mma.sync int8
// (m16n8k32) with independent accumulators and no memory traffic: the
// ceiling the prover is compared with. Each thread's sums go to out so the
// compiler keeps the work.
extern "C" __global__ void __launch_bounds__(256) mma_peak(int32_t* out, uint32_t iters) {
    uint32_t a[4], b0 = threadIdx.x * 0x01010101u, b1 = b0 ^ 0x5a5a5a5au;
    for (int i = 0; i < 4; i++) a[i] = (threadIdx.x + i) * 0x03050709u;
    int32_t c[8][4] = {};
    for (uint32_t it = 0; it < iters; it++) {
#pragma unroll
        for (int j = 0; j < 8; j++) mma_s8(c[j], a, b0, b1);
    }
    int32_t s = 0;
#pragma unroll
    for (int j = 0; j < 8; j++) s += c[j][0] ^ c[j][1] ^ c[j][2] ^ c[j][3];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
