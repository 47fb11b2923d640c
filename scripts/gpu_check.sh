#!/usr/bin/env bash
# The GPU checks, on a machine with one CUDA GPU after `make install-gpu` (under 10 minutes):
#   1. the attention backend imports and every paper's config passes agent-rl's and verl's checks with its
#      memory plan (dry runs, no weights downloaded);
#   2. tests/gpu: the methods and losses in bf16 on the GPU against fp32 on the CPU, and one actor update of
#      a randomly initialised Qwen2.5-1.5B-shaped model at the configured token budget through verl's FSDP2
#      path (SDPA on a packed micro-batch, fused log-probs), its peak memory against the planner's estimate.
#   bash scripts/gpu_check.sh            # exit status 0 when all pass
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
OUT=${OUT:-$(mktemp -d)}
export RAY_AUTH_MODE=disabled WANDB_MODE=offline TOKENIZERS_PARALLELISM=false

"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device: run this on a GPU machine'"
"$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'{p.name}, {p.total_memory / 2**30:.0f} GiB')"

echo "== 1. dry runs of every experiment on cluster=8gpu (plan printed per run)"
experiments=$(cd conf/experiment && ls ./*/*.yaml | sed 's|^\./||; s|\.yaml$||' | paste -sd, -)
timeout 300 .venv/bin/agent-rl -m "experiment=$experiments" cluster=8gpu dry_run=true logger=console \
    hydra.sweep.dir="$OUT/dry" > "$OUT/dry.log" 2>&1 || { tail -40 "$OUT/dry.log"; exit 1; }
echo "$(grep -c 'verdict: fits' "$OUT/dry.log") of $(echo "$experiments" | tr , '\n' | wc -l) plans fit"
grep -A8 'memory plan: model=qwen2.5-7b' "$OUT/dry.log" | head -9

echo "== 2. tests/gpu"
timeout 480 "$PY" -m pytest -q -s -m gpu tests/gpu
