#!/usr/bin/env bash
# visage on an NVIDIA GPU, one command: checks the driver and NVRTC, checks that one training
# step of every family on CUDA equals the CPU's, measures training images/s at 640² batch 32
# (retinaface-mnet, retinaface-r50, fan; f32 and, where the binary has them, f16 / bf16) on
# the synthetic set, and detection ms/image at 640×480; writes everything to a results file.
#
# Carry two files to the GPU machine: this script and the x86-64 `visage` binary built with
#   cargo build --release -p visage --features cuda
# Nothing else is needed: the synthetic set is generated on the spot and the configs come
# out of the binary (`visage config NAME`).
#
# Usage: run.sh [--visage PATH] [--device cuda:0] [--out DIR] [--iterations N]
#               [--self-test]
#   --visage      the binary (default: ./visage beside this script, else `visage` on PATH)
#   --device      the CUDA device (default cuda:0)
#   --out         work and results directory (default ./visage-gpu-results)
#   --iterations  training iterations per measurement (default 30; images/s is read from
#                 the last 10, after the kernels are compiled)
#   --self-test   run the whole sequence on the CPU with tiny sizes, to check this script
#                 on a machine without a GPU (no GPU figures come out of it)
#
# Exit status: 0 all done; 2 the machine cannot run it (no GPU, no driver, no NVRTC, a
# binary without CUDA); 1 something failed while measuring (see the results file).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
visage=""
device="cuda:0"
out="$PWD/visage-gpu-results"
iterations=30
self_test=0
while [ $# -gt 0 ]; do
    case "$1" in
        --visage) visage=$2; shift 2 ;;
        --device) device=$2; shift 2 ;;
        --out) out=$2; shift 2 ;;
        --iterations) iterations=$2; shift 2 ;;
        --self-test) self_test=1; shift ;;
        -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument \`$1\` (see --help)" >&2; exit 2 ;;
    esac
done

cannot() { echo "run.sh: cannot run here: $*" >&2; exit 2; }

if [ -z "$visage" ]; then
    if [ -x "$here/visage" ]; then visage="$here/visage"; else visage=$(command -v visage || true); fi
fi
[ -n "$visage" ] && [ -x "$visage" ] || cannot "no visage binary (pass --visage PATH, or put it beside this script)"

mkdir -p "$out" || cannot "cannot create $out"
out=$(cd "$out" && pwd)
results="$out/results.md"
log="$out/run.log"
: > "$log"

# Measurement sizes: the issue's on a GPU, tiny ones for --self-test on a CPU.
if [ "$self_test" = 1 ]; then
    device="cpu"; size=128; batch=2; iterations=4; window=2
    train_images=16; det_images=4; det_size="160x120"
else
    size=640; batch=32; window=10
    [ "$iterations" -gt "$window" ] || cannot "--iterations must be above $window"
    train_images=$((batch * 8)); det_images=64; det_size="640x480"
fi

# 1. Driver, CUDA runtime library, NVRTC (Burn's CUDA backend compiles kernels at run time).
gpu_info="(self-test on the CPU: no GPU)"
if [ "$self_test" = 0 ]; then
    command -v nvidia-smi >/dev/null \
        || cannot "nvidia-smi not found: no NVIDIA driver on this machine"
    gpu_info=$(nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv,noheader 2>&1) \
        || cannot "nvidia-smi failed: $gpu_info"
    [ -n "$gpu_info" ] || cannot "nvidia-smi lists no GPU"
    libs=$(ldconfig -p 2>/dev/null; for d in ${LD_LIBRARY_PATH//:/ }; do ls "$d" 2>/dev/null; done)
    echo "$libs" | grep -q 'libcuda\.so' \
        || cannot "libcuda.so (the driver's CUDA library) is not on the loader path"
    if ! echo "$libs" | grep -q 'libnvrtc\.so'; then
        if [ -d "$here/nvidia/cuda_nvrtc/lib" ]; then
            export LD_LIBRARY_PATH="$here/nvidia/cuda_nvrtc/lib:${LD_LIBRARY_PATH:-}"
        else
            cannot "libnvrtc.so (NVRTC, which Burn's CUDA backend compiles its kernels with) not found.
  It ships in the nvidia-cuda-nvrtc PyPI wheel. On any machine with pip:
    pip download --no-deps nvidia-cuda-nvrtc-cu12
    unzip nvidia_cuda_nvrtc_cu12-*.whl 'nvidia/cuda_nvrtc/lib/*'
  then copy the nvidia/ folder beside this script (it is picked up from there), or
    export LD_LIBRARY_PATH=\$PWD/nvidia/cuda_nvrtc/lib:\$LD_LIBRARY_PATH"
        fi
    fi
fi

{
    echo "# visage on $device"
    echo
    echo "- date: $(date -u +%Y-%m-%dT%H:%MZ)"
    echo "- binary: $("$visage" --version 2>&1)"
    echo "- GPU: $gpu_info"
    echo "- CPU: $(lscpu 2>/dev/null | sed -n 's/^Model name: *//p'), $(nproc) threads"
    echo "- command: $0 --device $device --iterations $iterations$([ "$self_test" = 1 ] && echo ' --self-test')"
    echo
} > "$results"
failed=0

# 2. One training step per family on the device against the CPU.
echo "== check-device" | tee -a "$log"
check=$("$visage" check-device --device "$device" 2>&1)
status=$?
echo "$check" >> "$log"
if echo "$check" | grep -q "built without support"; then
    cannot "$visage was built without CUDA: cargo build --release -p visage --features cuda"
fi
{
    echo "## One training step per family, $device against the CPU"
    echo
    echo '```'
    echo "$check"
    echo '```'
    echo
} >> "$results"
[ $status -eq 0 ] || { failed=1; echo "check-device failed (see $results)" >&2; }

# 3. The synthetic sets: training crops, and fixed-size images for detection.
echo "== synthetic sets" | tee -a "$log"
"$visage" synth --out "$out/data/train" --train-images "$train_images" --val-images 4 >> "$log" 2>&1 \
    || { echo "visage synth failed (see $log)" >&2; exit 1; }
"$visage" synth --out "$out/data/detect" --train-images 1 --val-images "$det_images" \
    --image-size "$det_size" >> "$log" 2>&1 \
    || { echo "visage synth failed (see $log)" >&2; exit 1; }

# A shipped config on the synthetic set: square crops of $size, logs every iteration.
write_config() { # name file
    "$visage" config "$1" > "$2" || return 1
    sed -i -e "s|^root = .*|root = \"$out/data/train\"|" \
        -e '/^train_images = /d' \
        -e "s|^input_size = .*|input_size = $size|" \
        -e 's|^log_every = .*|log_every = 1|' \
        -e 's|^eval_every = .*|eval_every = 0|' \
        -e "s|^threads = .*|threads = $(nproc)|" "$2"
    grep -q "^root = \"$out/data/train\"" "$2" && grep -q "^input_size = $size" "$2" \
        && grep -q '^log_every = 1' "$2" || { echo "$2: a key was not rewritten" >&2; return 1; }
    printf '\n[data.synth]\ntrain_images = %s\nval_images = 4\n' "$train_images" >> "$2"
}

# Mean images/s over the last $window logged iterations of a run's metrics.jsonl.
images_per_s() {
    tail -n "$window" "$1" | sed -n 's/.*"images_per_s":\([0-9.eE+-]*\).*/\1/p' \
        | awk '{ s += $1; n += 1 } END { if (n) printf "%.1f", s / n; else print "n/a" }'
}

# 4. Training images/s.
echo "== training" | tee -a "$log"
{
    echo "## Training, ${size}² crops, batch $batch, $iterations iterations (mean of the last $window)"
    echo
    echo "| model | precision | images/s | peak GPU memory (MiB) |"
    echo "|---|---|---|---|"
} >> "$results"
for model in retinaface-mnet retinaface-r50 fan; do
    config="$out/$model.toml"
    write_config "$model" "$config" || { failed=1; continue; }
    for precision in f32 f16 bf16; do
        run_dir="$out/runs/$model-$precision"
        args=(train --config "$config" --device "$device" --batch-size "$batch"
              --max-iterations "$iterations" --overwrite --run-dir "$run_dir")
        [ "$precision" = f32 ] || args+=(--precision "$precision")
        echo "-- $model $precision" | tee -a "$log"
        if [ "$self_test" = 0 ]; then
            nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 \
                > "$out/memory.log" 2>/dev/null &
            sampler=$!
        fi
        "$visage" "${args[@]}" >> "$log" 2>&1
        status=$?
        memory="n/a"
        if [ "$self_test" = 0 ]; then
            kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
            memory=$(sort -n "$out/memory.log" | tail -1)
        fi
        if [ $status -ne 0 ]; then
            reason=$(tail -1 "$log")
            echo "| $model | $precision | failed: ${reason//|/\\|} | |" >> "$results"
            # A precision this binary or backend does not offer is recorded, not a failure.
            echo "$reason" | grep -q -- "--precision" || failed=1
            continue
        fi
        echo "| $model | $precision | $(images_per_s "$run_dir/metrics.jsonl") | $memory |" >> "$results"
    done
done
echo >> "$results"

# 5. Detection at 640×480 with the trained RetinaFace-mnet (f32), batch 1.
echo "== detection" | tee -a "$log"
{
    echo "## Detection, $det_images images of $det_size, batch 1"
    echo
    echo "| model | device | timing |"
    echo "|---|---|---|"
} >> "$results"
wheres="$device cpu"
[ "$self_test" = 1 ] && wheres="$device"
for model in retinaface-mnet retinaface-r50 fan; do
    for where in $wheres; do
        line=$("$visage" detect --device "$where" --config "$out/$model.toml" \
            --weights "$out/runs/$model-f32" --json "$out/detect-$model.json" \
            "$out/data/detect/WIDER_val/images" 2>&1 | tee -a "$log" | grep "per image")
        [ -n "$line" ] || { failed=1; line="failed (see run.log)"; }
        echo "| $model | $where | $line |" >> "$results"
    done
done

echo
cat "$results"
echo "results: $results"
exit $failed
