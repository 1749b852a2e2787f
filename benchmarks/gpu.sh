#!/usr/bin/env bash
# Everything a session with a GPU should run, in one command (one device call):
#   bash benchmarks/gpu.sh            # results under $OUT, or benchmarks/results/gpu
# 1. the CUDA twins of the kernel tests (pytest -m gpu), 2. the kernel benchmarks
# (python -m benchmarks --suite gpu), 3. the linear cross entropy benchmark at the issue's
# shape (python -m benchmarks.linear --device cuda). It uses the machine's own python3
# (torch, triton, pytest there) with losskit from this checkout; peers that are not
# installed there (liger-kernel, cut-cross-entropy) are skipped unless their wheels
# travel in .whl/ (see the device tool's README). Each step's log is kept; a failing
# step does not stop the next.
set -u -o pipefail
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
export PYTHONPATH="$PWD/src:$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
status=0
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
} 2>&1 | tee "$out/device.txt"
python3 -m pytest -q -m gpu -p no:cacheprovider -o addopts="-ra" tests 2>&1 \
  | tee "$out/gpu_tests.log" || status=1
python3 -m benchmarks --suite gpu --out "$out" 2>&1 | tee "$out/bench.log" || status=1
python3 -m benchmarks.linear --device cuda --rounds 2 --json "$out/linear.json" 2>&1 \
  | tee "$out/linear.log" || status=1
exit $status
