// Proof-of-Compute work function v2 on Hopper (sm_90a): the same function
// as poc_v2.cu, with the products on wgmma, the warpgroup's asynchronous
// MMA, which on an H100/H200 runs at the datasheet's dense INT8 rate where
// mma.sync reaches two thirds of it.
//
// The source of kernels/poc_v2_sm90a.ptx, which the agent loads on sm_90
// devices next to poc_v2.ptx (`make ptx` rebuilds both on a machine with
// nvcc). Dim 256 only, the production shape; other shapes run poc_v2.cu.
//
// A warpgroup (4 warps, 128 threads) takes 64 nonces through the network
// with the activations in registers the whole way: the inputs are drawn
// straight into the A fragments, each layer's sums (the accumulators)
// are requantised into the next layer's A fragments, and the last layer's
// are folded and hashed. No activation touches shared memory. This works
// because a product does not care in which order its K inputs come: the
// host permutes each layer's weight rows (gpu.go, hopperLayout) so that
// K position P of the layer meets the feature that the thread holding P
// happens to have:
//   layer 0:   P = 32s + 16h + 4t + b  ->  feature 64t + 8s + 4h + b
//              (thread t of a quad draws Philox blocks 4t..4t+3 of its row)
//   layer >= 1: P = 32s + 16h + 4t + b  ->  feature 32s + 16h + 8(b/2) + 2t + b%2
//              (the accumulator layout: thread t holds columns 8j + 2t, +1)
// for K step s (0-7), half h of its 32 bytes, quad thread t and byte b.
//
// The weights stream through shared memory in chunks of 128 output
// columns × 256 inputs (32 KB), in the 128-byte swizzle wgmma reads, two
// or three chunks deep, shared by the CTA's warpgroups.
#include "poc_v2_common.cuh"

#define CHUNK_BYTES (128 * 256)  // 128 output columns × 256 inputs

// The instruction and its 64 accumulator operands, for both forms.
#define WGMMA_RS_TEXT                                                         \
    "{\n.reg .pred scd;\nsetp.ne.b32 scd, %69, 0;\n"                           \
    "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {"                     \
    "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63" \
    "}, {%64, %65, %66, %67}, %68, scd;\n}\n"
#define WGMMA_RS_D(c) \
    c(d[0]), c(d[1]), c(d[2]), c(d[3]), c(d[4]), c(d[5]), c(d[6]), c(d[7]), \
    c(d[8]), c(d[9]), c(d[10]), c(d[11]), c(d[12]), c(d[13]), c(d[14]), c(d[15]), \
    c(d[16]), c(d[17]), c(d[18]), c(d[19]), c(d[20]), c(d[21]), c(d[22]), c(d[23]), \
    c(d[24]), c(d[25]), c(d[26]), c(d[27]), c(d[28]), c(d[29]), c(d[30]), c(d[31]), \
    c(d[32]), c(d[33]), c(d[34]), c(d[35]), c(d[36]), c(d[37]), c(d[38]), c(d[39]), \
    c(d[40]), c(d[41]), c(d[42]), c(d[43]), c(d[44]), c(d[45]), c(d[46]), c(d[47]), \
    c(d[48]), c(d[49]), c(d[50]), c(d[51]), c(d[52]), c(d[53]), c(d[54]), c(d[55]), \
    c(d[56]), c(d[57]), c(d[58]), c(d[59]), c(d[60]), c(d[61]), c(d[62]), c(d[63])

// wgmma_rs: d += A·Bᵀ over one K step of 32, A (64×32) from registers
// (4 a warp-thread, the mma.sync A layout per warp), B (128 rows × 32)
// through descriptor b. wgmma_rs0 overwrites d instead (scale-d false)
// and does not read it, so the accumulators need not stay live between
// chunks: fewer registers across the chunk loads and the barrier.
__device__ __forceinline__ void wgmma_rs(int32_t (&d)[64], const uint32_t (&a)[4], uint64_t b) {
    asm volatile(WGMMA_RS_TEXT : WGMMA_RS_D("+r") : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}

__device__ __forceinline__ void wgmma_rs0(int32_t (&d)[64], const uint32_t (&a)[4], uint64_t b) {
    asm volatile(WGMMA_RS_TEXT : WGMMA_RS_D("=r") : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(0));
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// Orders this thread's shared-memory writes (cp.async) before the async
// proxy's reads (wgmma).
__device__ __forceinline__ void fence_async_shared() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// The B descriptor of a K-major tile in the 128-byte swizzle: rows of 128
// bytes, eight to a 1024-byte aligned group, groups 1024 bytes apart (the
// stride field); a K step within the rows moves the address by its bytes.
__device__ __forceinline__ uint64_t bdesc(uint32_t addr) {
    return (uint64_t)((addr & 0x3FFFF) >> 4) | (uint64_t)1 << 16 | (uint64_t)(1024 >> 4) << 32 | (uint64_t)1 << 62;
}

// pack4 requantises four sums into one A register: byte i is
// byte1(y_i) ^ byte2(y_i).
__device__ __forceinline__ uint32_t pack4(int32_t y0, int32_t y1, int32_t y2, int32_t y3) {
    uint32_t p = __byte_perm((uint32_t)y0, (uint32_t)y1, 0x6251);  // y0.b1 y1.b1 y0.b2 y1.b2
    uint32_t q = __byte_perm((uint32_t)y2, (uint32_t)y3, 0x6251);
    return __byte_perm(p, q, 0x5410) ^ __byte_perm(p, q, 0x7632);
}

// chunk_product multiplies the warpgroup's 64 rows (A, all 8 K steps) by
// the chunk at shared address cb (128 columns × 256 inputs) into acc, and
// waits for it. The empty asm after the wait keeps the compiler from
// reading the accumulators before it.
__device__ __forceinline__ void chunk_product(int32_t (&acc)[64], const uint32_t (&a)[8][4], uint32_t cb) {
    wgmma_fence();
    wgmma_rs0(acc, a[0], bdesc(cb));
#pragma unroll
    for (int s = 1; s < 8; s++) wgmma_rs(acc, a[s], bdesc(cb + (s >> 2) * 16384 + (s & 3) * 32));
    wgmma_commit();
    wgmma_wait0();
#pragma unroll
    for (int i = 0; i < 64; i++) asm volatile("" : "+r"(acc[i])::"memory");
}

template <int WGS, int STAGES>
__device__ __forceinline__ void poc_v2h(const Args& p) {
    constexpr int TILE_M = 64 * WGS;
    constexpr int THREADS = 128 * WGS;

    extern __shared__ __align__(1024) uint8_t smem[];
    // The swizzle is on address bits 4-9: the chunks start 1024-aligned.
    const uint32_t s0 = (uint32_t)__cvta_generic_to_shared(smem);
    const uint32_t pad = ((s0 + 1023) & ~1023u) - s0;
    uint8_t* wbuf = smem + pad;
    const uint32_t wbase = s0 + pad;

    const int tid = threadIdx.x;
    const int lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const uint64_t base = (uint64_t)blockIdx.x * TILE_M;
    const int row0 = warp * 16 + g;  // this thread's rows: row0 and row0 + 8

    const int total = (int)p.layers * 2;  // chunks: (layer, column half)
    auto load_chunk = [&](int q) {
        const uint8_t* src = (const uint8_t*)p.weights + (size_t)q * CHUNK_BYTES;
        uint8_t* dst = wbuf + (q % STAGES) * CHUNK_BYTES;
        for (int i = tid; i < CHUNK_BYTES / 16; i += THREADS) {
            int r = i >> 3, c = i & 7;  // row of 128 bytes, its 16-byte piece
            cp_async16(dst + r * 128 + ((c ^ (r & 7)) << 4), src + i * 16);
        }
    };
#pragma unroll
    for (int q = 0; q < STAGES - 1; q++) {
        if (q < total) load_chunk(q);
        cp_async_commit();
    }

    // The inputs, drawn into the layer-0 A fragments: word j of Philox
    // block 4t + bb of row r goes to K step 2bb + j/2, half j%2.
    uint32_t a[8][4];
#pragma unroll
    for (int rs = 0; rs < 2; rs++) {
        uint64_t idx = base + row0 + 8 * rs;
        uint64_t nonce = p.nonces ? (idx < p.count ? p.nonces[idx] : 0) : p.start + idx;
#pragma unroll
        for (int bb = 0; bb < 4; bb++) {
            uint4 v = philox4x32(make_uint4((uint32_t)nonce, (uint32_t)(nonce >> 32), (uint32_t)(4 * t + bb), TAG_INPUT), p.pk0, p.pk1);
            a[2 * bb][rs] = v.x;
            a[2 * bb][2 + rs] = v.y;
            a[2 * bb + 1][rs] = v.z;
            a[2 * bb + 1][2 + rs] = v.w;
        }
    }

    int32_t acc[64];
    uint32_t nx[8][4];
    for (int l = 0; l < (int)p.layers; l++) {
        // nh (the column half) unrolled: nx is indexed by constants only,
        // so it stays in registers.
#pragma unroll
        for (int nh = 0; nh < 2; nh++) {
            const int q = 2 * l + nh;
            cp_async_wait<STAGES - 2>();  // chunk q is here
            fence_async_shared();
            __syncthreads();  // ... for every thread; every wgmma of chunk q-1 has finished
            if (q + STAGES - 1 < total) load_chunk(q + STAGES - 1);
            cp_async_commit();

            chunk_product(acc, a, wbase + (q % STAGES) * CHUNK_BYTES);

            // Columns 128nh + 8j + 2t (+1) become K step 4nh + j/4 of the
            // next layer: accumulator register i is row g + 8((i/2)%2),
            // column 8(i/4) + 2t + i%2.
#pragma unroll
            for (int sl = 0; sl < 4; sl++) {
                const int s = 4 * nh + sl, i = 16 * sl;
                nx[s][0] = pack4(acc[i + 0], acc[i + 1], acc[i + 4], acc[i + 5]);
                nx[s][1] = pack4(acc[i + 2], acc[i + 3], acc[i + 6], acc[i + 7]);
                nx[s][2] = pack4(acc[i + 8], acc[i + 9], acc[i + 12], acc[i + 13]);
                nx[s][3] = pack4(acc[i + 10], acc[i + 11], acc[i + 14], acc[i + 15]);
            }
        }
#pragma unroll
        for (int s = 0; s < 8; s++)
#pragma unroll
            for (int k = 0; k < 4; k++) a[s][k] = nx[s][k];
    }

    // The fold: byte b of this thread's words is feature 8(b/2) + 2t + b%2
    // mod 16 on every K step, so XOR-ing its words folds its share of a
    // row; the quad's four shares make the row's 16 bytes.
    uint32_t fr[2] = {0, 0};
#pragma unroll
    for (int s = 0; s < 8; s++) {
        fr[0] ^= a[s][0] ^ a[s][2];
        fr[1] ^= a[s][1] ^ a[s][3];
    }
    // Thread 0 of a quad hashes row g, thread 1 row g + 8; the quad's
    // four shares of each row come by shuffle.
    uint32_t w[4];
#pragma unroll
    for (int k = 0; k < 4; k++) {
        uint32_t w0 = __shfl_sync(0xffffffffu, fr[0], (lane & ~3) | k);
        uint32_t w1 = __shfl_sync(0xffffffffu, fr[1], (lane & ~3) | k);
        w[k] = t == 1 ? w1 : w0;
    }
    if (t < 2) {
        uint4 f;
        f.x = __byte_perm(w[0], w[1], 0x5410);
        f.y = __byte_perm(w[2], w[3], 0x5410);
        f.z = __byte_perm(w[0], w[1], 0x7632);
        f.w = __byte_perm(w[2], w[3], 0x7632);
        uint64_t idx = base + row0 + 8 * t;
        if (idx < p.count) {
            uint64_t nonce = p.nonces ? p.nonces[idx] : p.start + idx;
            finish(p, idx, nonce, f);
        }
    }
}

// wgmma_check.cu defines POC_NO_ENTRIES: it needs the building blocks,
// not five more kernels to compile.
#ifndef POC_NO_ENTRIES
// The entry points: warpgroups a CTA, weight chunks in flight, CTAs an SM
// should hold. The Go side launches ceil(count / (64·WGS)) CTAs of 128·WGS
// threads with 1024 + STAGES·32 KB of shared memory.
#define ENTRY(WGS, STAGES, MINB)                                              \
    extern "C" __global__ void __launch_bounds__(128 * WGS, MINB)             \
        poc_v2h_d256_g##WGS##_s##STAGES##_b##MINB(Args p) { poc_v2h<WGS, STAGES>(p); }

ENTRY(2, 3, 1)
ENTRY(2, 2, 2)
ENTRY(3, 3, 1)
ENTRY(4, 3, 1)
ENTRY(2, 3, 2)
#endif
