// wgmma_check: a standalone check of the wgmma building blocks that
// poc_v2_sm90a.cu relies on, on a Hopper GPU (it needs nvcc):
//
//   nvcc -gencode=arch=compute_90a,code=sm_90a -O3 -o wgmma_check wgmma_check.cu && ./wgmma_check
//
// 1. One warpgroup multiplies a random 64×256 int8 A (from registers, in
//    the layout the kernel assumes) by a random 128×256 B (K-major, in the
//    128-byte swizzle, through the kernel's descriptors) and compares every
//    int32 sum with the CPU's. A wrong fragment layout or descriptor shows
//    here as a pattern of wrong cells, where the Go tests only see wrong
//    digests.
// 2. wgmma_peak: the rate of m64n128k32 int8 wgmma with A in registers on
//    every SM, no memory traffic: the ceiling the prover is compared with.
//    Not yet measured: the first run's loop was wrong (see wgmma_peak).
#define POC_NO_ENTRIES
#include "poc_v2_sm90a.cu"

#include <cstdio>
#include <cstdlib>
#include <vector>

__device__ __forceinline__ uint32_t stage_b(uint8_t* smem, const int8_t* B, int tid, int threads) {
    const uint32_t s0 = (uint32_t)__cvta_generic_to_shared(smem);
    const uint32_t pad = ((s0 + 1023) & ~1023u) - s0;
    // Row r = 128k + n holds B[n][128k .. 128k+127].
    for (int i = tid; i < CHUNK_BYTES / 16; i += threads) {
        int r = i >> 3, c = i & 7, k = r >> 7, n = r & 127;
        cp_async16(smem + pad + r * 128 + ((c ^ (r & 7)) << 4), B + n * 256 + k * 128 + c * 16);
    }
    cp_async_commit();
    cp_async_wait<0>();
    fence_async_shared();
    __syncthreads();
    return s0 + pad;
}

__global__ void __launch_bounds__(128, 1) one(const int8_t* A, const int8_t* B, int32_t* D) {
    extern __shared__ __align__(1024) uint8_t smem[];
    const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5, g = lane >> 2, t = lane & 3;
    const uint32_t base = stage_b(smem, B, tid, 128);
    uint32_t a[8][4];
#pragma unroll
    for (int s = 0; s < 8; s++) {
        const int8_t* r0 = A + (16 * w + g) * 256 + 32 * s + 4 * t;
        a[s][0] = *(const uint32_t*)r0;
        a[s][1] = *(const uint32_t*)(r0 + 8 * 256);
        a[s][2] = *(const uint32_t*)(r0 + 16);
        a[s][3] = *(const uint32_t*)(r0 + 8 * 256 + 16);
    }
    int32_t acc[64];  // the first product writes it (scale-d false)
    chunk_product(acc, a, base);
#pragma unroll
    for (int i = 0; i < 64; i++) D[(16 * w + g + 8 * ((i >> 1) & 1)) * 128 + 8 * (i >> 2) + 2 * t + (i & 1)] = acc[i];
}

// wgmma_peak: four warpgroups a CTA, each issuing chains of 8 products.
__global__ void __launch_bounds__(512, 1) wgmma_peak(const int8_t* B, int32_t* out, int iters) {
    extern __shared__ __align__(1024) uint8_t smem[];
    const int tid = threadIdx.x;
    const uint32_t base = stage_b(smem, B, tid, 512);
    uint32_t a[8][4];
#pragma unroll
    for (int s = 0; s < 8; s++)
#pragma unroll
        for (int k = 0; k < 4; k++) a[s][k] = (tid + s) * 0x01030507u + k;
    int32_t acc[64];
    chunk_product(acc, a, base);
    // Every later product accumulates into acc (scale-d true), so each
    // depends on the one before. The first H200 run (2026-12-05) called
    // chunk_product here, whose first product overwrites acc: every chain
    // but the last was dead, and the loop "ran" at 7.14e15 ops/s, 3.6
    // times the datasheet, so dead chains were dropped somewhere (that
    // run kept no SASS to show where). This form is not yet compiled.
    for (int it = 1; it < iters; it++) {
        wgmma_fence();
#pragma unroll
        for (int s = 0; s < 8; s++) wgmma_rs(acc, a[s], bdesc(base + (s >> 2) * 16384 + (s & 3) * 32));
        wgmma_commit();
        wgmma_wait0();
    }
    int32_t x = 0;
#pragma unroll
    for (int i = 0; i < 64; i++) x ^= acc[i];
    out[blockIdx.x * blockDim.x + tid] = x;
}

#define CK(x)                                                                 \
    do {                                                                      \
        cudaError_t e = (x);                                                  \
        if (e != cudaSuccess) {                                               \
            printf("%s: %s\n", #x, cudaGetErrorString(e));                    \
            return 1;                                                         \
        }                                                                     \
    } while (0)

int main() {
    std::vector<int8_t> A(64 * 256), B(128 * 256);
    srand(7);
    for (auto& v : A) v = (int8_t)(rand() & 0xff);
    for (auto& v : B) v = (int8_t)(rand() & 0xff);
    int8_t *dA, *dB;
    int32_t *dD, *dO;
    CK(cudaMalloc(&dA, A.size()));
    CK(cudaMalloc(&dB, B.size()));
    CK(cudaMalloc(&dD, 64 * 128 * 4));
    CK(cudaMemcpy(dA, A.data(), A.size(), cudaMemcpyHostToDevice));
    CK(cudaMemcpy(dB, B.data(), B.size(), cudaMemcpyHostToDevice));
    const int shm = CHUNK_BYTES + 1024;
    CK(cudaFuncSetAttribute(one, cudaFuncAttributeMaxDynamicSharedMemorySize, shm));
    CK(cudaFuncSetAttribute(wgmma_peak, cudaFuncAttributeMaxDynamicSharedMemorySize, shm));
    one<<<1, 128, shm>>>(dA, dB, dD);
    CK(cudaDeviceSynchronize());
    std::vector<int32_t> D(64 * 128);
    CK(cudaMemcpy(D.data(), dD, D.size() * 4, cudaMemcpyDeviceToHost));
    int bad = 0;
    for (int m = 0; m < 64; m++)
        for (int n = 0; n < 128; n++) {
            int32_t want = 0;
            for (int k = 0; k < 256; k++) want += (int32_t)A[m * 256 + k] * B[n * 256 + k];
            if (D[m * 128 + n] != want && bad++ < 12) printf("D[%d][%d] = %d, want %d\n", m, n, D[m * 128 + n], want);
        }
    printf("wgmma_check: %d of %d sums wrong\n", bad, 64 * 128);

    int sms;
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    CK(cudaMalloc(&dO, sms * 512 * 4));
    wgmma_peak<<<sms, 512, shm>>>(dB, dO, 1000);
    CK(cudaDeviceSynchronize());
    cudaEvent_t e0, e1;
    CK(cudaEventCreate(&e0));
    CK(cudaEventCreate(&e1));
    const int iters = 20000;
    CK(cudaEventRecord(e0));
    wgmma_peak<<<sms, 512, shm>>>(dB, dO, iters);
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float ms;
    CK(cudaEventElapsedTime(&ms, e0, e1));
    double ops = (double)sms * 4 * iters * 8 * 64.0 * 128 * 32 * 2;
    printf("BENCH gpu_wgmma_int8_ops_per_s %.4g ops/s (%d SMs, %.1f ms)\n", ops / (ms / 1e3), sms, ms);
    return bad != 0;
}
