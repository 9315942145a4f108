#!/usr/bin/env bash
# Scores WIDER FACE submissions with the widely used Python port of the official evaluation
# (github.com/wondervictor/WiderFace-Evaluation), as recorded in
# crates/visage-eval/tests/fixtures/python_port.json. Run it outside the repository:
#
#   tools/eval/run_python_port.sh <port_checkout> <python> <ground_truth_dir> <submission_dir>...
#
# <port_checkout> is a scratch copy of the port at commit 53474e0d (it is modified in place:
# the two changes below, then `setup.py build_ext --inplace`); <python> has numpy, scipy,
# cython, tqdm and setuptools. Prints the port's output and `/usr/bin/time` per submission.
set -euo pipefail
port=$1 python=$2 gt=$3
shift 3
cd "$port"
# NumPy >= 1.24 removed np.float; the port's Cython overlap kernel uses it as its dtype.
sed -i 's/^DTYPE = np\.float$/DTYPE = np.float64/' box_overlaps.pyx
# Unused import of IPython (not a dependency otherwise).
sed -i '/^from IPython import embed$/d' evaluation.py
"$python" setup.py build_ext --inplace >/dev/null
for sub in "$@"; do
  echo "== $sub"
  /usr/bin/time -f "wall %e s, user %U s, sys %S s" "$python" evaluation.py -p "$sub" -g "$gt" 2>/tmp/port_progress.log
  tail -n 1 /tmp/port_progress.log
done
