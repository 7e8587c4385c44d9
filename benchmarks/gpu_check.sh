#!/usr/bin/env bash
# The GPU checks in one command, for a session that has a CUDA GPU (about 9 minutes at most):
#   1. the Triton and kernel tests on CUDA tensors (compiles the Triton kernels into Triton's cache,
#      which the later stages reuse),
#   2. benchmarks/gpu_speed.py (the markdown table for docs/performance.md),
#   3. the whole test suite on CUDA tensors (KANLAB_TEST_DEVICE=cuda; pytest-xdist if installed).
# Usage, from the repository root:  bash benchmarks/gpu_check.sh [OUT_DIR]   (default gpu_check_out)
# Each stage writes its log to OUT_DIR and has its own time limit (seconds, overridable):
#   KERNEL_TESTS_S=150 BENCH_S=240 SUITE_S=150; PYTHON (default python3) is the interpreter.
# Uses the installed torch / triton / pytest (no venv, no downloads); kanlab comes from ./src.
set -u
OUT=${1:-gpu_check_out}
mkdir -p "$OUT"
: >"$OUT/summary.txt"
PY=${PYTHON:-python3}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 KANLAB_NO_CPP=1
unset TRITON_INTERPRET

{
  date; nvidia-smi || true
  $PY -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())"
} >"$OUT/env.txt" 2>&1

stage() {  # stage NAME SECONDS COMMAND...: run with a time limit, log to OUT/NAME.txt, print one status line
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  timeout "$limit" "$@" >"$OUT/$name.txt" 2>&1
  local rc=$?
  echo "$name: exit $rc after $((SECONDS - start)) s ($( [ $rc = 124 ] && echo "time limit $limit s" || tail -n 1 "$OUT/$name.txt"))" | tee -a "$OUT/summary.txt"
}

XDIST=""
$PY -c "import xdist" 2>/dev/null && XDIST="-n 8"
stage kernel_tests "${KERNEL_TESTS_S:-150}" env KANLAB_TEST_DEVICE=cuda $PY -m pytest -q -p no:cacheprovider -rfEs \
  $XDIST tests/test_kernels_triton.py tests/test_kernels.py
stage gpu_speed "${BENCH_S:-240}" $PY benchmarks/gpu_speed.py --out "$OUT/gpu_speed.md"
stage suite_cuda "${SUITE_S:-150}" env KANLAB_TEST_DEVICE=cuda $PY -m pytest -q -p no:cacheprovider -rfEs $XDIST tests
