#!/usr/bin/env python3
"""One platform against two (the second emulated through QEMU): the time of `wharf build --push`
of the same generated project, cold (new contents, new registry namespace), built for
linux/amd64 only and for linux/amd64 + linux/arm64.

Each service: 200 small random files, `FROM wharf-test/busybox:1-${TARGETARCH}`, `COPY . /app`
and a `RUN` step that reads every file (so the emulated platform does real work)."""

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time


def write_project(path, ns, registry, services, platforms, seed):
    rnd = random.Random(seed)
    plats = ", ".join(platforms)
    lines = ["services:"]
    for i in range(services):
        name = f"svc{i}"
        lines += [f"  {name}:", f"    image: {registry}/{ns}/{name}", "    build:",
                  f"      context: ./{name}", f"      platforms: [{plats}]"]
        d = os.path.join(path, name)
        os.makedirs(d)
        for f in range(200):
            with open(os.path.join(d, f"f{f}"), "wb") as fh:
                fh.write(rnd.randbytes(rnd.randint(1024, 4096)))
        with open(os.path.join(d, "Dockerfile"), "w") as fh:
            fh.write("ARG TARGETARCH\nFROM wharf-test/busybox:1-${TARGETARCH}\nCOPY . /app\n"
                     "RUN cat /app/f* | md5sum > /sum && uname -m > /arch\n")
    with open(os.path.join(path, "compose.yaml"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
    env = dict(os.environ, GIT_AUTHOR_NAME="b", GIT_AUTHOR_EMAIL="b@b", GIT_COMMITTER_NAME="b",
               GIT_COMMITTER_EMAIL="b@b")
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--wharf", required=True, help="the wharf binary to time")
    p.add_argument("--services", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--registry", default=os.environ.get("WHARF_TEST_PLAIN_REGISTRY", "127.0.0.1:5000"))
    a = p.parse_args()
    cases = {"linux/amd64": ["linux/amd64"], "linux/amd64 + linux/arm64 (emulated)": ["linux/amd64", "linux/arm64"]}
    times = {c: [] for c in cases}
    run_id = f"{os.getpid()}{int(time.time())}"
    with tempfile.TemporaryDirectory() as root:
        for r in range(a.runs):
            for c, platforms in cases.items():
                ns = f"wharf-bench-platforms-{run_id}-{len(platforms)}-{r}"
                d = os.path.join(root, ns)
                os.makedirs(d)
                write_project(d, ns, a.registry, a.services, platforms, seed=f"{ns}")
                t = time.monotonic()
                out = subprocess.run([a.wharf, "build", "--push", "--progress", "plain"], cwd=d,
                                     capture_output=True, text=True)
                took = time.monotonic() - t
                if out.returncode != 0:
                    sys.exit(f"{c}: wharf failed:\n{out.stderr}")
                times[c].append(took)
                print(f"run {r + 1} {c}: {took:.1f}s", file=sys.stderr)
    base = statistics.median(times["linux/amd64"])
    print(f"| platforms ({a.services} services, cold) | median of {a.runs} | ratio |")
    print("|---|---|---|")
    for c, ts in times.items():
        m = statistics.median(ts)
        print(f"| {c} | {m:.1f} s | {m / base:.2f} |")


if __name__ == "__main__":
    main()
