#!/usr/bin/env bash
# Throughput of the expression engine (crates/expr): parse/s, evaluations/s and template
# renders/s over the official oracle set. Prints figures; asserts nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p gantry-expr --bench eval "$@"
