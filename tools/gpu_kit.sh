#!/usr/bin/env bash
# Packs what a lent GPU machine needs to run pionrl's CUDA tests and benchmark: that machine has the CUDA
# toolkit, cuBLAS and PyTorch but none of pionrl's Debian libraries (OpenBLAS, cJSON, curl, ...) and no network,
# and a session has 30 minutes of device time, too little to spend on building. So the CUDA build is made here
# (make CUDA=1: nvcc and cuBLAS are installed here), and the binaries that touch the device go into
# gpu-kit.tar.xz (ignored by git) with every shared library they load that is neither glibc's nor CUDA's.
# cudart is packed too (it is small and matches the build); cuBLAS and cuSOLVER are the device's own.
#
# Usage, here:    tools/gpu_kit.sh
# then with the device tool: run(command="tools/gpu_session.sh", carry=["gpu-kit.tar.xz"])
# (tools/gpu_session.sh unpacks the kit, runs the checks in priority order and leaves the logs in $OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
tests="test_cuda_ops test_cuda_attention test_cuda_optim test_cuda_model test_cuda_sampler test_train test_generate_cli"
# a build of its own for x86-64-v3 (AVX2, FMA): this machine's -march=native may not run on the device's CPU
b=build-cuda-kit
targets="$b/pionrl $b/bench/bench_cuda $b/bench/bench_cuda_ops"
for t in $tests; do targets="$targets $b/tests/$t"; done
make CUDA=1 BUILD=$b OPT="-O3 -march=x86-64-v3" -j"$(nproc)" $targets
kit=$(mktemp -d)
trap 'rm -rf "$kit"' EXIT
mkdir -p "$kit/lib" "$kit/build-cuda/tests" "$kit/build-cuda/bench"
cp $b/pionrl "$kit/build-cuda/"
cp $b/bench/bench_cuda $b/bench/bench_cuda_ops "$kit/build-cuda/bench/"
for t in $tests; do cp "$b/tests/$t" "$kit/build-cuda/tests/"; done
# libraries: what ldd resolves, less glibc (the device's is newer, and must match its loader) and the CUDA math
# libraries (hundreds of MB; the device's toolkit has them)
for b in $targets; do ldd "$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    grep -Ev '/(libc|libm|libdl|libpthread|librt|libresolv|ld-linux[^/]*)\.so|/lib(cublas|cublasLt|cusolver|cusparse|nvJitLink)\.so' |
    while read -r lib; do cp -L "$lib" "$kit/lib/"; done
tar -C "$kit" -cJf gpu-kit.tar.xz .
echo "gpu-kit.tar.xz: $(du -h gpu-kit.tar.xz | cut -f1), $(ls "$kit/lib" | wc -l) libraries, built from $(git rev-parse --short HEAD)"
