#!/usr/bin/env bash
# The checks a GPU session runs first, on the lent machine, in priority order, each bounded in time so the
# later ones still get their turn inside one 10-minute device command (override with TESTS_S, MEMCHECK_S,
# BENCH_S, OPS_S seconds; STEPS="tests memcheck bench ops" picks steps). Everything lands in $OUT (the device tool
# brings it back; at most 8 files): summary.txt, gpu.txt, tests.log, memcheck.log, bench.log, cuda.json, ops.log and
# cuda_ops.json.
#
# Needs gpu-kit.tar.xz (tools/gpu_kit.sh, carried by the device tool) unless build-cuda/ is already built here.
set -u
cd "$(dirname "$0")/.."
out=${OUT:-gpu-session}
mkdir -p "$out"
summary="$out/summary.txt"
if [ -f gpu-kit.tar.xz ]; then
    kit=/tmp/pionrl-gpu-kit
    rm -rf "$kit" && mkdir -p "$kit" && tar -C "$kit" -xJf gpu-kit.tar.xz
    mkdir -p build-cuda && cp -r "$kit/build-cuda/." build-cuda/
    # the kit's libraries, then wherever this machine keeps cuBLAS and cuSOLVER (the toolkit, or PyTorch's nvidia-*
    # wheels: cusolver needs cusparse and nvjitlink beside it)
    wheels=$(python3 -c 'import importlib, os
for m in ("cublas", "cusolver", "cusparse", "nvjitlink"):
    try: print(os.path.join(list(importlib.import_module("nvidia." + m).__path__)[0], "lib"), end=":")
    except Exception: pass' 2>/dev/null || true)
    export LD_LIBRARY_PATH="$kit/lib:/usr/local/cuda/lib64:${wheels}${LD_LIBRARY_PATH:-}"
fi
{ nvidia-smi; echo; ldd build-cuda/tests/test_cuda_model; } > "$out/gpu.txt" 2>&1
echo "gpu-session at $(date -u +%FT%TZ), $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)" > "$summary"

# step NAME SECONDS COMMAND...: runs it with a time limit, its output in NAME.log, one line in the summary
step() {
    local name=$1 limit=$2
    shift 2
    case " ${STEPS:-tests memcheck bench ops} " in *" $name "*) ;; *) return 0 ;; esac
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$? note=""
    [ "$rc" = 124 ] && note=" (timed out after ${limit}s)"
    echo "$name: exit $rc$note $(grep -E '[0-9]+ passed, [0-9]+ failed' "$out/$name.log" | tail -1)" >> "$summary"
}

cuda_tests="test_cuda_ops test_cuda_attention test_cuda_optim test_cuda_model test_cuda_sampler"
# 1. the CUDA tests against the CPU reference, then the device training and CLI runs
step tests "${TESTS_S:-140}" bash tests/run.sh build-cuda
# 2. compute-sanitizer: memcheck on every CUDA test, racecheck and synccheck on the shared-memory kernels
step memcheck "${MEMCHECK_S:-180}" bash -c "
    san=\$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    for t in $cuda_tests; do echo \"== memcheck \$t\"; \$san --tool memcheck --error-exitcode 1 build-cuda/tests/\$t || exit 1; done
    for tool in racecheck synccheck; do for t in test_cuda_ops test_cuda_attention test_cuda_sampler; do
        echo \"== \$tool \$t\"; \$san --tool \$tool --error-exitcode 1 build-cuda/tests/\$t || exit 1; done; done"
# 3. the benchmark with its PyTorch peers (PIONRL_BENCH_QUICK=1 for the 0.6B shape alone)
step bench "${BENCH_S:-210}" build-cuda/bench/bench_cuda
[ -f bench/results/cuda.json ] && cp bench/results/cuda.json "$out/"
# 4. each kernel against its own bound (bytes/s or TFLOP/s): where the time of a step goes
step ops "${OPS_S:-60}" build-cuda/bench/bench_cuda_ops
[ -f bench/results/cuda_ops.json ] && cp bench/results/cuda_ops.json "$out/"
cat "$summary"
