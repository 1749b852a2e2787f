#!/usr/bin/env bash
# Everything a session with a GPU should run, in one command (one device call), within
# 9 minutes (each step has a time limit) and leaving 7 files under $OUT:
#   bash benchmarks/gpu.sh            # results under $OUT, or benchmarks/results/gpu
# 1. the compile check of the benchmarks' kernels (sm_90a, sm_80: registers, spills, shared
# memory, occupancy) -> kernel_resources_hot.{md,json}; 2. the CUDA twins of the kernel
# tests (pytest -m gpu); 3. the kernel benchmarks (python -m benchmarks --suite gpu) ->
# results.{json,md}; 4. the linear cross entropy benchmark at the shape
# (python -m benchmarks.linear --device cuda) -> linear.json; 5. the roofline model with
# each measured median over its floor (python -m benchmarks.roofline) -> roofline.md.
# Every step's output also goes to gpu.log. It uses the machine's own python3 (torch,
# triton, pytest there) with losskit from this checkout; peers that are not installed
# there (liger-kernel, cut-cross-entropy) are skipped unless their wheels travel in .whl/
# (see the device tool's README). A failing or timed-out step does not stop the next.
set -u -o pipefail
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
log="$out/gpu.log"
: >"$log"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
unset TRITON_INTERPRET
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
status=0
step() {  # step SECONDS NAME COMMAND...: run with a time limit, output to the log
  local limit=$1 name=$2
  shift 2
  echo "== $name (limit ${limit}s)" | tee -a "$log"
  local t0=$SECONDS
  timeout -k 10 "$limit" "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  echo "== $name: exit $rc after $((SECONDS - t0))s" | tee -a "$log"
  [ "$rc" -eq 0 ] || status=1
}
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} 2>&1 | tee -a "$log"
bench=$(mktemp -d)
step 70 "compile check (hot set)" python3 -m benchmarks.compile_check --set hot --out "$out"
step 90 "GPU tests" python3 -m pytest -q -m gpu -p no:cacheprovider -o addopts="-ra" tests
step 200 "kernel benchmarks" python3 -m benchmarks --suite gpu --out "$bench"
cp "$bench/results.json" "$bench/results.md" "$out/" 2>/dev/null
step 120 "linear benchmark" \
  python3 -m benchmarks.linear --device cuda --rounds 2 --repeats 10 --json "$out/linear.json"
step 10 "roofline" sh -c "python3 -m benchmarks.roofline --results '$out/results.json' \
  --linear '$out/linear.json' --resources '$out/kernel_resources_hot.json' >'$out/roofline.md'"
[ -f "$out/roofline.md" ] && tee -a "$log" <"$out/roofline.md"
rm -rf "$bench"
exit $status
