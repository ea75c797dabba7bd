#!/usr/bin/env python3
"""Benchmarks of `gantry run` against act and a plain bash script (issue: gantry run).

Measures, on the same workflows, interleaved, medians of N runs:
  * per-step overhead: (50 steps of `true` - 1 step) / 49, against bash's own cost of starting
    one `bash -e` per step, and against act (`act -P ubuntu-latest=-self-hosted`);
  * an empty one-step workflow end to end;
  * a step printing 100 MB with 10 secrets registered: MB/s into the stored log;
  * 8 parallel jobs of `sleep 1`: makespan.

Usage: bench/run_bench.py --gantry target/release/gantry [--act PATH] [--runs 5]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def workflow(name, jobs):
    text = f"name: {name}\non: push\njobs:\n"
    for job_id, steps in jobs.items():
        text += f"  {job_id}:\n    runs-on: ubuntu-latest\n    steps:\n"
        for step in steps:
            text += f"      - run: {step}\n"
    return text


SECRETS = [f"secret-value-{i:02d}-{'x' * i}" for i in range(10)]

CASES = {
    "steps1": workflow("one step", {"job": ["true"]}),
    "steps50": workflow("fifty steps", {"job": ["true"] * 50}),
    "print100mb": workflow(
        "print 100 MB",
        {
            "job": [
                # 100,000,000 bytes of 50-byte lines; one line in 1000 holds a secret.
                "python3 -c \"import sys; s='secret-value-03-xxx'; "
                "line='log line with some words 0123456789 abcdefghij\\n'; "
                "chunk=(line*999+'token '+s+' '*(len(line)-len(s)-7)+'\\n'); "
                "w=sys.stdout.write; [w(chunk) for _ in range(100000000//len(chunk))]\""
            ]
        },
    ),
    "parallel8": workflow("eight parallel", {f"j{i}": ["sleep 1"] for i in range(8)}),
}


def make_repo(root, name, text):
    repo = os.path.join(root, name)
    os.makedirs(os.path.join(repo, ".github", "workflows"))
    with open(os.path.join(repo, ".github", "workflows", "bench.yml"), "w") as f:
        f.write(text)
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@b")
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-qm", "bench"], cwd=repo, check=True, env=env)
    return repo


def timed(cmd, cwd, env=None):
    start = time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=env)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(cmd)} in {cwd}")
    return elapsed


def bash_steps(n):
    """The same commands as a plain bash script: one `bash -e` per step, as a runner starts."""
    script = "for i in $(seq %d); do bash -e -c true; done" % n
    return ["bash", "-c", script]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--gantry", required=True)
    parser.add_argument("--act")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    gantry = os.path.abspath(args.gantry)
    if args.act and os.sep in args.act:
        args.act = os.path.abspath(args.act)
    root = tempfile.mkdtemp(prefix="gantry-bench-")
    try:
        repos = {name: make_repo(root, name, text) for name, text in CASES.items()}
        secret_args = []
        for i, value in enumerate(SECRETS):
            secret_args += ["--secret", f"S{i}={value}"]
        samples = {}

        def add(key, value):
            samples.setdefault(key, []).append(value)

        for _ in range(args.runs):
            # Interleave every tool on every case in each round.
            for case in ("steps1", "steps50"):
                add(f"gantry {case}", timed([gantry, "run", "--quiet"], repos[case]))
                if args.act:
                    add(f"act {case}", timed([args.act, "-P", "ubuntu-latest=-self-hosted",
                                              "push"], repos[case]))
            add("bash steps1", timed(bash_steps(1), root))
            add("bash steps50", timed(bash_steps(50), root))
            add("gantry print100mb",
                timed([gantry, "run", "--quiet"] + secret_args, repos["print100mb"]))
            add("gantry parallel8", timed([gantry, "run", "--quiet", "-p", "8"],
                                          repos["parallel8"]))
            if args.act:
                add("act parallel8", timed([args.act, "-P", "ubuntu-latest=-self-hosted",
                                            "push"], repos["parallel8"]))

        med = {k: statistics.median(v) for k, v in samples.items()}
        print(f"runs per figure: {args.runs} (median)")
        for key in sorted(med):
            print(f"  {key:24s} {med[key] * 1000:9.1f} ms")
        per_step = (med["gantry steps50"] - med["gantry steps1"]) / 49 * 1000
        bash_step = (med["bash steps50"] - med["bash steps1"]) / 49 * 1000
        print(f"per-step overhead: gantry {per_step:.2f} ms, bash -e alone {bash_step:.2f} ms, "
              f"gantry above bash {per_step - bash_step:.2f} ms (goal <= 3 ms)")
        if args.act:
            # act (self-hosted) also starts one `bash -e` per step: what each adds above bash's
            # own cost is its overhead; the raw per-step times include bash for both.
            act_step = (med["act steps50"] - med["act steps1"]) / 49 * 1000
            act_above = act_step - bash_step
            gantry_above = max(per_step - bash_step, 1e-9)
            print(f"per-step overhead: act {act_step:.2f} ms, act above bash {act_above:.2f} ms: "
                  f"{act_above / gantry_above:.1f}x gantry's (goal >= 10x); "
                  f"with bash's own cost included {act_step / max(per_step, 1e-9):.1f}x")
        print(f"empty one-step workflow: {med['gantry steps1'] * 1000:.1f} ms (goal <= 50 ms)")
        log_dir = os.path.join(repos["print100mb"], ".gantry", "runs")
        newest = max(os.listdir(log_dir), key=int)
        log = os.path.join(log_dir, newest, "logs", "job.log")
        size = os.path.getsize(log)
        with open(log, "rb") as f:
            content = f.read()
        leaked = any(s.encode() in content for s in SECRETS)
        mbps = 100.0 / max(med["gantry print100mb"] - med["gantry steps1"], 1e-9)
        print(f"100 MB with 10 secrets: {mbps:.0f} MB/s into the stored log "
              f"(log {size / 1e6:.1f} MB, secrets leaked: {leaked}; goal >= 200 MB/s)")
        print(f"8 parallel jobs of sleep 1: makespan {med['gantry parallel8']:.2f} s "
              f"(goal <= 1.2 s)")
        if leaked:
            sys.exit("a secret reached the stored log")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
