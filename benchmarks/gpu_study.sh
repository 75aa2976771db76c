#!/usr/bin/env bash
# The GPU profile of the study behind one command: a warm-up benchmark, then the study if it fits.
#
#   benchmarks/gpu_study.sh                    # studies/gpu.yaml -> results/gpu, budget 9 min (one H200)
#   benchmarks/gpu_study.sh --quick            # its quick profile -> results/gpu_quick (runs on a CPU)
#   BUDGET_MIN=12 SECONDS_TIMED=30 benchmarks/gpu_study.sh results/gpu_try
#
# 1. benchmarks/bench_training.py (builds the training and benchmark data when missing, times every
#    family for SECONDS_TIMED s in all, default 60) projects the study's wall time and stops here, with
#    status 1 and one line, when its own time plus the projection exceeds BUDGET_MIN (default 9);
# 2. qpe study studies/gpu.yaml --out OUT (OUT default results/gpu);
# 3. prints the study page and the wall time of each part.
# Run it from an environment with qpe installed (and a CUDA build of torch for the GPU).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=()
out=results/gpu
for arg in "$@"; do
    case "$arg" in
        --quick) quick=(--quick); out=results/gpu_quick ;;
        -*) echo "gpu_study.sh: unknown option $arg (only --quick)" >&2; exit 2 ;;
        *) out=$arg ;;
    esac
done
budget=${BUDGET_MIN:-9}
timed=${SECONDS_TIMED:-60}
if [ ${#quick[@]} -gt 0 ]; then timed=${SECONDS_TIMED:-5}; fi

start=$(date +%s)
python benchmarks/bench_training.py studies/gpu.yaml "${quick[@]}" --seconds "$timed" --budget-min "$budget"
benched=$(date +%s)
python -m qpe study studies/gpu.yaml --out "$out" "${quick[@]}"
end=$(date +%s)

echo "study page: $out/study.md ($out/study.html)"
echo "wall time: $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s" \
     "(benchmark $(( benched - start )) s, study $(( end - benched )) s; budget $budget min)"
