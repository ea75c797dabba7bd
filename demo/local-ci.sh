#!/usr/bin/env bash
# A whole CI on this machine, on Gantry's defaults: `gantry server` (SQLite under a data dir,
# two embedded agents), a git repository with a workflow, a signed push webhook as GitHub would
# send it, then the run's jobs and logs through the CLI. Leaves nothing running.
#
#   demo/local-ci.sh            # build, run the demo, clean up
#   KEEP=1 demo/local-ci.sh     # keep the server running afterwards (its URL is printed)
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building gantry"
cargo build --release -q -p gantry-cli
target_dir="${CARGO_TARGET_DIR:-target}"
gantry="$(cd "$target_dir/release" && pwd)/gantry"

work=$(mktemp -d /tmp/gantry-demo.XXXXXX)
port=${PORT:-18181}
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && [ -z "${KEEP:-}" ]; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    rm -rf "$work"
  fi
}
trap cleanup EXIT

echo "== a repository with a workflow ($work/repo)"
mkdir -p "$work/repo/.github/workflows"
cat > "$work/repo/.github/workflows/ci.yml" <<'EOF'
name: CI
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      version: ${{ steps.version.outputs.version }}
    steps:
      - uses: actions/checkout@v4
      - id: version
        run: echo "version=1.0.${{ github.run_number }}" >> "$GITHUB_OUTPUT"
      - run: echo "building $(cat README) with token ${{ secrets.DEPLOY_TOKEN }}"
  test:
    needs: build
    runs-on: ubuntu-latest
    strategy:
      matrix:
        shard: [1, 2, 3]
    steps:
      - run: echo "shard ${{ matrix.shard }} tests version ${{ needs.build.outputs.version }}"
  report:
    needs: test
    if: always()
    runs-on: ubuntu-latest
    steps:
      - run: echo "tests ${{ needs.test.result }}"
EOF
echo "hello" > "$work/repo/README"
git -C "$work/repo" init -q -b main
git -C "$work/repo" add -A
git -C "$work/repo" -c user.name=demo -c user.email=demo@example.invalid commit -qm "First commit"
sha=$(git -C "$work/repo" rev-parse HEAD)

echo "== gantry server on 127.0.0.1:$port (data in $work/data)"
"$gantry" server --data-dir "$work/data" --listen "127.0.0.1:$port" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat "$work/server.out"
export GANTRY_SERVER="http://127.0.0.1:$port"
GANTRY_TOKEN=$(grep -o 'gantry_[a-z]*_[0-9a-f]*' "$work/server.out" | head -n 1)
export GANTRY_TOKEN

echo "== gantry repo add, gantry secret set"
"$gantry" repo add "file://$work/repo" --name demo/app --webhook-secret demo-hook-secret
echo "s3cret-deploy-token" | "$gantry" secret set DEPLOY_TOKEN --repo demo/app

echo "== a signed push webhook, as GitHub sends it"
payload=$(python3 - "$sha" "$work/repo" <<'EOF'
import json, sys
sha, path = sys.argv[1], sys.argv[2]
print(json.dumps({
    "ref": "refs/heads/main", "before": "0" * 40, "after": sha,
    "created": True, "deleted": False, "forced": False,
    "repository": {"full_name": "demo/app", "name": "app", "clone_url": "file://" + path,
                   "html_url": "http://example.invalid/demo/app", "owner": {"login": "demo"},
                   "default_branch": "main"},
    "sender": {"login": "demo"}, "head_commit": {"id": sha, "message": "First commit"},
    "commits": [],
}))
EOF
)
signature=$(printf '%s' "$payload" | python3 -c 'import hmac,hashlib,sys; print(hmac.new(b"demo-hook-secret", sys.stdin.buffer.read(), hashlib.sha256).hexdigest())')
curl -fsS -X POST "$GANTRY_SERVER/hooks/github" \
  -H "X-GitHub-Event: push" -H "X-GitHub-Delivery: demo-1" \
  -H "X-Hub-Signature-256: sha256=$signature" -H "Content-Type: application/json" \
  --data-binary "$payload"
echo

echo "== waiting for the run"
for _ in $(seq 1 300); do
  status=$(curl -fs "$GANTRY_SERVER/api/v1/runs" | python3 -c 'import json,sys; r=json.load(sys.stdin)["runs"]; print(r[0]["status"] if r else "none")')
  [ "$status" = "completed" ] && break
  sleep 0.2
done
"$gantry" runs
run=$(curl -fs "$GANTRY_SERVER/api/v1/runs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["id"])')
"$gantry" runs "$run"
echo "== logs"
"$gantry" logs "$run"
echo
echo "Web UI: $GANTRY_SERVER/runs/$run"
conclusion=$(curl -fs "$GANTRY_SERVER/api/v1/runs" | python3 -c 'import json,sys; print(json.load(sys.stdin)["runs"][0]["conclusion"])')
echo "Run conclusion: $conclusion"
[ "$conclusion" = "success" ]
