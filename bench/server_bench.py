#!/usr/bin/env python3
"""Benchmarks of `gantry server` with `gantry agent`s, as real processes on this machine.

Figures (goals from the issue in brackets):
  * latency: webhook sent -> first step running on an idle agent, over N pushes, each a new
    commit; the step writes `date +%s%N` into a file named after its commit
    [p50 <= 50 ms, p99 <= 200 ms]; with the server's own timestamps to show where time goes
    (run created, job claimed);
  * throughput: 2,000 one-step jobs (20 pushes of a 100-leg matrix) through 20 agents,
    first webhook to last job finished [>= 200 jobs/s];
  * log ingestion: one job printing 200 MB (100-byte lines), step start to job finished,
    and the bytes the server stored;
  * server memory: VmRSS idle (agents registered and polling) [<= 40 MiB], the highest VmRSS
    sampled every 50 ms under the load above, and VmHWM at the end.

Usage: bench/server_bench.py --gantry target/release/gantry [--latency-runs 200]
       [--jobs 2000] [--agents 20] [--log-mb 200] [--only latency,throughput,logs]
"""

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SECRET = "bench-webhook-secret"
REGISTRATION = "bench-registration-token"
ZERO = "0" * 40
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@b")


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GANTRY_")}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, env=GIT_ENV,
                          capture_output=True, text=True).stdout.strip()


class Repo:
    def __init__(self, root, name, workflow):
        self.name = f"bench/{name}"
        self.path = os.path.join(root, name)
        os.makedirs(os.path.join(self.path, ".github", "workflows"))
        with open(os.path.join(self.path, ".github", "workflows", "bench.yml"), "w") as f:
            f.write(workflow)
        git(self.path, "init", "-q", "-b", "main")
        self.head = ZERO
        self.commit("workflow")

    def commit(self, message):
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)
        before, self.head = self.head, git(self.path, "rev-parse", "HEAD")
        return before, self.head

    def payload(self, before, after):
        repo = {"id": 1, "full_name": self.name, "clone_url": f"file://{self.path}",
                "html_url": f"https://forge.example/{self.name}", "default_branch": "main"}
        return {"ref": "refs/heads/main", "before": before, "after": after,
                "created": before == ZERO, "deleted": False, "forced": False,
                "repository": repo, "sender": {"login": "bench"},
                "head_commit": {"id": after, "message": "bench"}}


class Memory:
    """Samples the server's VmRSS every 50 ms."""

    def __init__(self, pid):
        self.pid = pid
        self.peak_kib = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def status(self, field):
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        return 0

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak_kib = max(self.peak_kib, self.status("VmRSS"))
            except OSError:
                return
            time.sleep(0.05)

    def reset_peak(self):
        self.peak_kib = 0


class Server:
    def __init__(self, gantry, root, log_mib):
        self.data = os.path.join(root, "data")
        self.out = open(os.path.join(root, "server.stdout"), "w+")
        self.err = open(os.path.join(root, "server.stderr"), "w")
        self.proc = subprocess.Popen(
            [gantry, "server", "--data-dir", self.data, "--listen", "127.0.0.1:0",
             "--agents", "0", "--registration-token", REGISTRATION,
             "--max-log-mib", str(log_mib)],
            stdout=self.out, stderr=self.err, stdin=subprocess.DEVNULL, env=clean_env())
        deadline = time.time() + 30
        self.url = self.token = None
        while time.time() < deadline and not (self.url and self.token):
            if self.proc.poll() is not None:
                raise SystemExit("the server exited at start; see " + self.err.name)
            self.out.seek(0)
            text = self.out.read()
            m = re.search(r"listening on (http://\S+)", text)
            t = re.search(r"export GANTRY_TOKEN=(\S+)", text)
            self.url = m and m.group(1)
            self.token = t and t.group(1)
            time.sleep(0.02)
        if not self.token:
            raise SystemExit("the server did not start")

    def call(self, method, path, body=None, headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Content-Type", "application/json")
        for k, v in (headers or {}).items():
            request.add_header(k, v)
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                text = answer.read()
                return answer.status, (json.loads(text) if text else None)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    def webhook(self, repo, before, after, delivery):
        body = json.dumps(repo.payload(before, after)).encode()
        signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        status, answer = self.call("POST", "/hooks/github", raw=body, headers={
            "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
            "X-Hub-Signature-256": signature})
        if status != 202:
            raise SystemExit(f"webhook refused: {status} {answer}")
        return answer

    def register(self, repo):
        status, answer = self.call("POST", "/api/v1/repositories", {
            "clone_url": f"file://{repo.path}", "name": repo.name, "webhook_secret": SECRET})
        if status != 201:
            raise SystemExit(f"register: {status} {answer}")
        return answer["id"]

    def runs(self, repo_id):
        runs, before = [], None
        while True:
            path = f"/api/v1/runs?repository={repo_id}&limit=100"
            if before:
                path += f"&before={before}"
            status, page = self.call("GET", path)
            runs.extend(page["runs"])
            before = page.get("next")
            if not before:
                return runs

    def run(self, run_id):
        return self.call("GET", f"/api/v1/runs/{run_id}")[1]

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def start_agents(gantry, root, server, first, count, stamps):
    """Agents `bench-<first>` .. `bench-<first+count-1>`, once all are registered."""
    agents = []
    for i in range(first, first + count):
        state = os.path.join(root, f"agent-{i}")
        os.makedirs(state)
        log = open(os.path.join(state, "stderr"), "w")
        agents.append(subprocess.Popen(
            [gantry, "agent", "--server", server.url, "--token", REGISTRATION,
             "--labels", "linux,x64", "--name", f"bench-{i}", "--state-dir", state],
            stdout=subprocess.DEVNULL, stderr=log, stdin=subprocess.DEVNULL,
            env=clean_env({"BENCH_STAMPS": stamps, "GANTRY_LOG": "warn"})))
    deadline = time.time() + 60
    while time.time() < deadline:
        status, answer = server.call("GET", "/api/v1/agents")
        if status == 200 and len(answer["agents"]) >= first + count:
            return agents
        time.sleep(0.05)
    raise SystemExit("the agents did not register")


def wait_runs(server, repo_id, count, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = server.runs(repo_id)
        if len(runs) >= count and all(r["status"] == "completed" for r in runs):
            return runs
        time.sleep(0.1)
    raise SystemExit(f"runs did not complete in {timeout} s")


def cpu_seconds(pid):
    """User + system CPU of a process and of its waited-for children (git, steps), in s."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 of stat; fields[0] here is field 3.
    ticks = sum(int(v) for v in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def describe(label, values):
    print(f"  {label:<34} p50 {percentile(values, 50):7.1f}  p90 {percentile(values, 90):7.1f}  "
          f"p99 {percentile(values, 99):7.1f}  max {max(values):7.1f} ms")


def bench_latency(server, root, stamps, runs):
    repo = Repo(root, "latency", "name: latency\non: push\njobs:\n  go:\n"
                "    runs-on: ubuntu-latest\n    steps:\n"
                "      - run: date +%s%N > \"$BENCH_STAMPS/${{ github.sha }}\"\n")
    repo_id = server.register(repo)
    total, ingest, claim, start = [], [], [], []
    for i in range(runs + 1):
        before, after = repo.commit(f"latency {i}")
        stamp = os.path.join(stamps, after)
        sent = time.time_ns()
        server.webhook(repo, before, after, f"latency-{i}")
        deadline = time.time() + 30
        while not os.path.exists(stamp) or os.path.getsize(stamp) == 0:
            if time.time() > deadline:
                raise SystemExit("a step did not start within 30 s")
            time.sleep(0.0005)
        with open(stamp) as f:
            started = int(f.read().strip())
        # Wait for the run to end so the next push finds the agent idle again.
        while True:
            run = [r for r in server.runs(repo_id) if r["sha"] == after]
            if run and run[0]["status"] == "completed":
                break
            time.sleep(0.005)
        detail = server.run(run[0]["id"])
        job = detail["jobs"][0]
        if i == 0:
            continue  # the first push also clones the mirror: not an idle steady state
        sent_ms = sent / 1e6
        total.append((started - sent) / 1e6)
        ingest.append(detail["run"]["created_ms"] - sent_ms)
        claim.append(job["started_ms"] - detail["run"]["created_ms"])
        start.append(started / 1e6 - job["started_ms"])
    print(f"latency: webhook sent -> first step running, idle agent, {runs} pushes")
    describe("total", total)
    describe("  webhook -> run stored (ingest)", ingest)
    describe("  run stored -> job claimed", claim)
    describe("  job claimed -> step running", start)
    return total


def bench_throughput(server, root, jobs, memory, agents):
    legs = 100
    pushes = max(1, jobs // legs)
    matrix = ", ".join(str(i) for i in range(legs))
    repo = Repo(root, "throughput", "name: throughput\non: push\njobs:\n  j:\n"
                "    runs-on: ubuntu-latest\n    strategy:\n      matrix:\n"
                f"        i: [{matrix}]\n    steps:\n      - run: \"true\"\n")
    repo_id = server.register(repo)
    commits = [repo.commit(f"throughput {i}") for i in range(pushes)]
    memory.reset_peak()
    server_cpu = cpu_seconds(server.proc.pid)
    agents_cpu = sum(cpu_seconds(a.pid) for a in agents)
    sent = time.time()
    for i, (before, after) in enumerate(commits):
        server.webhook(repo, before, after, f"throughput-{i}")
    runs = wait_runs(server, repo_id, pushes, 1800)
    finished = max(r["finished_ms"] for r in runs) / 1000
    elapsed = finished - sent
    server_cpu = cpu_seconds(server.proc.pid) - server_cpu
    agents_cpu = sum(cpu_seconds(a.pid) for a in agents) - agents_cpu
    done = 0
    for r in runs:
        detail = server.run(r["id"])
        done += sum(1 for j in detail["jobs"] if j["conclusion"] == "success")
        if r["conclusion"] != "success":
            print(f"  warning: run {r['id']} ended {r['conclusion']}")
    stored = max(r["created_ms"] for r in runs) / 1000 - sent
    print(f"  the {pushes} runs were stored (webhooks answered, ingested) within {stored:.1f} s "
          "of the first webhook")
    print(f"throughput: {done} one-step jobs ({pushes} pushes x {legs} legs) in {elapsed:.1f} s "
          f"= {done / elapsed:.1f} jobs/s; server peak VmRSS {memory.peak_kib / 1024:.1f} MiB")
    print(f"  CPU: server {server_cpu:.1f} s ({server_cpu / done * 1000:.1f} ms/job), agents "
          f"with their git and step processes {agents_cpu:.1f} s "
          f"({agents_cpu / done * 1000:.1f} ms/job)")
    return done / elapsed


def bench_logs(server, root, megabytes, memory):
    size = megabytes * 1_000_000
    script = ("python3 -c \"import sys; line='x'*99+'\\n'; "
              f"w=sys.stdout.write; [w(line*1000) for _ in range({size // 100_000})]\"")
    repo = Repo(root, "logs", "name: logs\non: push\njobs:\n  big:\n"
                "    runs-on: ubuntu-latest\n    steps:\n"
                f"      - run: {script}\n")
    repo_id = server.register(repo)
    before, after = repo.commit("logs")
    memory.reset_peak()
    server.webhook(repo, before, after, "logs-0")
    runs = wait_runs(server, repo_id, 1, 1800)
    detail = server.run(runs[0]["id"])
    job = detail["jobs"][0]
    status, steps = server.call("GET", f"/api/v1/jobs/{job['id']}")
    step = [s for s in steps["steps"] if s["log_end"] and s["log_start"] is not None][-1]
    seconds = (job["finished_ms"] - step["started_ms"]) / 1000
    stored = job["log_size"]
    print(f"log ingestion: {megabytes} MB printed, {stored / 1e6:.1f} MB stored "
          f"(truncated: {job['log_truncated']}), step start -> job finished {seconds:.2f} s "
          f"= {size / 1e6 / seconds:.1f} MB/s; server peak VmRSS {memory.peak_kib / 1024:.1f} MiB")
    return size / 1e6 / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gantry", required=True)
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--agents", type=int, default=20)
    parser.add_argument("--log-mb", type=int, default=200)
    parser.add_argument("--only", default="latency,throughput,logs")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    only = set(args.only.split(","))
    gantry = os.path.abspath(args.gantry)
    root = tempfile.mkdtemp(prefix="gantry-server-bench-")
    stamps = os.path.join(root, "stamps")
    os.makedirs(stamps)
    server = Server(gantry, root, max(64, args.log_mb * 2))
    agents = []
    try:
        memory = Memory(server.proc.pid)
        time.sleep(1)
        print(f"server: {server.url}, pid {server.proc.pid}; {os.cpu_count()} CPUs")
        agents = start_agents(gantry, root, server, 0, 1, stamps)
        time.sleep(2)
        print(f"memory: server VmRSS idle with 1 agent polling: "
              f"{memory.status('VmRSS') / 1024:.1f} MiB")
        if "latency" in only:
            bench_latency(server, root, stamps, args.latency_runs)
        if "throughput" in only:
            agents += start_agents(gantry, root, server, 1, args.agents - 1, stamps)
            time.sleep(1)
            print(f"memory: server VmRSS idle with {args.agents} agents polling: "
                  f"{memory.status('VmRSS') / 1024:.1f} MiB")
            bench_throughput(server, root, args.jobs, memory, agents)
        if "logs" in only:
            bench_logs(server, root, args.log_mb, memory)
        print(f"memory: server VmHWM (peak RSS over the whole run) "
              f"{memory.status('VmHWM') / 1024:.1f} MiB; VmRSS now "
              f"{memory.status('VmRSS') / 1024:.1f} MiB")
        with open(server.err.name) as f:
            locked = sum(1 for line in f if "database is locked" in line.lower())
        print(f"server stderr: {locked} 'database is locked' lines")
    finally:
        for agent in agents:
            agent.kill()
        server.stop()
        if args.keep:
            print("kept", root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
