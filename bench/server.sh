#!/usr/bin/env bash
# gantry server + agents as real processes: webhook-to-step latency, job throughput through 20
# agents, log ingestion, server memory. Prints figures; options go to bench/server_bench.py
# (e.g. --latency-runs 50 --jobs 500 --only latency,logs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p gantry-cli
target_dir="${CARGO_TARGET_DIR:-target}"
python3 bench/server_bench.py --gantry "$target_dir/release/gantry" "$@"
