#!/usr/bin/env bash
# Planning speed (crates/workflow): a generated 1,000-job workflow with needs and matrices,
# timed for parse + validate, plan_run, and a full RunGraph run. Prints figures; asserts nothing
# about speed.
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo bench -p gantry-workflow --bench plan "$@"
