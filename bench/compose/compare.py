#!/usr/bin/env python3
"""Times `config --format json` of wharf and of docker compose v2 on the benchmark project and
prints both, their ratio, and the library's `load` time measured by criterion.

usage: compare.py REFERENCE_DOCKER_COMPOSE WHARF_BINARY [RUNS]
"""
import json
import os
import shlex
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASE = os.path.join(HERE, "corpus", "platform-200")
ESTIMATES = os.path.join(HERE, "..", "..", "target", "criterion", "compose", "load_200_services", "new", "estimates.json")
TARGET_MS = 50.0


def timed(cmd, env, runs):
    for _ in range(2):  # warm the page cache
        subprocess.run(cmd, cwd=CASE, env=env, check=True, capture_output=True)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(cmd, cwd=CASE, env=env, check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times)


def main():
    # Both run in the project's folder: make their paths absolute.
    reference, wharf = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    with open(os.path.join(CASE, "args")) as f:
        args = shlex.split(f.read())
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", ""),
           "TAG": "1.4.2", "GIT_SHA": "0123456789abcdef0123456789abcdef01234567"}
    w_med, w_min = timed([wharf, *args, "config", "--format", "json"], env, runs)
    r_med, r_min = timed([reference, *args, "config", "--format", "json"], env, runs)
    print("200 services over 5 files (bench/compose/corpus/platform-200), median of", runs, "runs:")
    if os.path.exists(ESTIMATES):
        with open(ESTIMATES) as f:
            mean_ms = json.load(f)["mean"]["point_estimate"] / 1e6
        verdict = "within" if mean_ms < TARGET_MS else "OVER"
        print(f"  wharf_compose::load (criterion mean)  {mean_ms:8.2f} ms   {verdict} the {TARGET_MS:.0f} ms target")
    print(f"  wharf config --format json            {w_med:8.2f} ms   (min {w_min:.2f})")
    print(f"  docker compose config --format json   {r_med:8.2f} ms   (min {r_min:.2f})")
    print(f"  docker compose / wharf                {r_med / w_med:8.1f}x")


if __name__ == "__main__":
    main()
