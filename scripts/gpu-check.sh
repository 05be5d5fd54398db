#!/bin/bash
# gpu-check: the GPU prover's checks on a machine with an NVIDIA GPU, nvcc
# and no Go, as one prepared run (GPU time is short). Build the test
# binary first where Go is, statically:
#
#   CGO_ENABLED=0 go test -c -o .dev/gpuprover.test ./provider-agent/gpuprover
#   scripts/gpu-check.sh            (on the GPU machine, from a copy of the tree)
#
# It rebuilds both PTX files the way `make ptx` does (and says whether the
# generic one came out byte for byte), reports the Hopper kernel's
# registers, spills and wgmma count, runs kernels/wgmma_check.cu, then the
# Go tests against the fresh PTX: every variant and the golden vectors
# against the CPU, throughput, and 10^6 nonces. Files for the caller go to
# $OUT when it is set.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp}
T=${GPUPROVER_TEST:-$PWD/.dev/gpuprover.test}
K=provider-agent/gpuprover/kernels
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv,noheader
nvcc --version | tail -1
cp $K/poc_v2.ptx /tmp/old.ptx
# The check program compiles while make ptx runs (16 cores there).
(cd $K && nvcc -gencode=arch=compute_90a,code=sm_90a -O3 -o /tmp/wgmma_check wgmma_check.cu > /tmp/wgmma_check.log 2>&1) &
if command -v make >/dev/null; then make ptx 2>&1 | tail -20; else
  nvcc -arch=compute_80 -ptx -O3 $K/poc_v2.cu -o /tmp/g.ptx && sed 's/^\.version .*/.version 7.8/' /tmp/g.ptx > $K/poc_v2.ptx
  nvcc -arch=compute_90a -ptx -O3 $K/poc_v2_sm90a.cu -o /tmp/h.ptx 2>&1 | tail -20; sed 's/^\.version .*/.version 8.0/' /tmp/h.ptx > $K/poc_v2_sm90a.ptx
fi
cmp $K/poc_v2.ptx /tmp/old.ptx && echo "generic PTX reproduced byte for byte"
# A Hopper kernel that did not compile leaves the placeholder: stop here
# and keep the GPU minutes for the run after the fix.
grep -q '^\.visible \.entry' $K/poc_v2_sm90a.ptx || { echo "poc_v2_sm90a.ptx has no entry point: nvcc failed"; cp $K/poc_v2.ptx $OUT/; exit 1; }
cp $K/poc_v2.ptx $K/poc_v2_sm90a.ptx $OUT/
echo "== ptxas sm_90a (registers, spills, wgmma serialisation warnings)"
ptxas -arch=sm_90a -O3 -v $K/poc_v2_sm90a.ptx -o /tmp/h.cubin 2>&1 | grep -v '^$' | tail -24
cuobjdump --dump-sass /tmp/h.cubin > /tmp/h.sass; echo "IGMMA: $(grep -c IGMMA /tmp/h.sass)  LDL/STL: $(grep -c 'LDL\|STL' /tmp/h.sass)"
echo "== wgmma_check"
wait
tail -5 /tmp/wgmma_check.log
timeout 60 /tmp/wgmma_check
cd provider-agent/gpuprover
export HIGHWAY_REAL_GPU=1 HIGHWAY_POC_PTX=$PWD/kernels/poc_v2.ptx HIGHWAY_POC_PTX_SM90A=$PWD/kernels/poc_v2_sm90a.ptx
echo "== agree"
timeout 150 "$T" -test.run 'TestGPUVariantsAgree|TestGPUGolden' -test.v 2>&1 | grep -v '^=== RUN' | tail -25
echo "== throughput"
HIGHWAY_GPU_SECONDS=1 timeout 150 "$T" -test.run TestGPUThroughput -test.v 2>&1 | grep -v '^=== RUN' | tail -25
echo "== agree 1e6"
timeout 120 "$T" -test.run TestGPUAgreesWithCPU -test.v 2>&1 | grep -v '^=== RUN' | tail -12
