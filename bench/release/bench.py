#!/usr/bin/env python3
"""The release benchmark: the time to build a compose project's services and push each under its
git SHA and `latest`, three ways, in the same run on the same machine and daemon.

  (a) wharf     wharf build --push --registry REG/NS --repository '{service}'
                      --tag '{git_sha}' --tag latest
  (b) compose   TAG=<sha> docker compose build; TAG=<sha> docker compose push;
                TAG=latest docker compose build; TAG=latest docker compose push
  (c) script    the push-to-ecr.sh recipe: docker compose build, then for each tag (SHA first,
                then latest) and each service, one after another: docker tag + docker push

Each recipe runs two scenarios on a project generated for it (N services, each with F small
files of 1-4 KiB in nested folders and one M MiB random blob; `FROM wharf-test/busybox:1`,
`COPY . /app`, a trivial RUN; committed to git):

  cold    new random contents in a new folder, a registry namespace nobody has pushed to and no
          image of the project in the daemon: no build cache entry, local image or registry blob
          can match. (--prune-build-cache also empties the daemon's whole build cache first.)
  no-op   right after the cold run: `git commit --allow-empty`, then the same recipe again, with
          the daemon and the registry as the cold run left them.

Each (recipe, run) pair has its own project and namespace, so no recipe helps another. Recipes
run interleaved (the order rotates each run) so that drift of the machine spreads over all three.
Every command runs under /usr/bin/time -v for its peak resident set size; after each scenario the
registry is asked whether every service has both tags.

usage: bench.py [--services N] [--runs K] [--blob-mib M] [--files F] [--scale 1,6,20,50]
                [--wharf PATH] [--out FILE] [--keep] ...      (see --help)
"""
import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
BASE_IMAGE = "wharf-test/busybox:1"
TIME = "/usr/bin/time"
RECIPES = ["wharf", "compose", "script"]
LABELS = {
    "wharf": "(a) wharf build --push",
    "compose": "(b) docker compose build + push, per tag",
    "script": "(c) push-to-ecr.sh: compose build, docker tag + push",
}
BASELINE = "compose"
# Variables that would change what the recipes do (which commit is tagged, which files, where to
# push, GitHub Actions output files): the recipes run without them.
STRIPPED_ENV = {
    "WHARF_REGISTRY", "WHARF_TAGS", "WHARF_PROGRESS", "WHARF_GIT_SHA", "WHARF_GIT_BRANCH",
    "GITHUB_SHA", "CI_COMMIT_SHA", "BUILDKITE_COMMIT", "CIRCLE_SHA1", "GIT_COMMIT",
    "CODEBUILD_RESOLVED_SOURCE_VERSION", "GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT",
    "COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES", "COMPOSE_PATH_SEPARATOR", "TAG",
    "RUST_LOG", "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE",
}
MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# The generated project


def write_project(path, ns, registry, services, files, blob_mib, seed, deps_seconds=0, shared_base=False):
    """A compose project of `services` services under `path`, committed to a new git repository.
    `seed` makes its contents differ from every other project's. `deps_seconds`: each service
    first runs a dependency step that long (`RUN sleep`, on a `deps.txt` of its own) before its
    sources are copied. `shared_base`: svc-02… build FROM svc-01's image (a `service:` context)."""
    rng = random.Random(seed)
    compose = [f"name: {ns}", "services:"]
    for s in range(1, services + 1):
        svc = f"svc-{s:02d}"
        root = os.path.join(path, svc)
        os.makedirs(root)
        # Nested folders: 10 per level, 3 levels, files spread over them.
        for i in range(files):
            folder = os.path.join(root, "src", f"a{i // 100 % 10}", f"b{i // 10 % 10}", f"c{i % 10}")
            os.makedirs(folder, exist_ok=True)
            with open(os.path.join(folder, f"f{i:05d}.dat"), "wb") as f:
                f.write(rng.randbytes(rng.randint(1024, 4096)))
        with open(os.path.join(root, "blob.bin"), "wb") as f:
            f.write(rng.randbytes(blob_mib * 1024 * 1024))
        from_base = shared_base and s > 1
        lines = [f"FROM {'base' if from_base else BASE_IMAGE}"]
        if deps_seconds:
            with open(os.path.join(root, "deps.txt"), "w") as f:
                f.write(rng.randbytes(16).hex() + "\n")
            lines += ["COPY deps.txt /deps.txt",
                      f"RUN sleep {deps_seconds} && wc -c /deps.txt > /deps.done"]
        lines += ["COPY . /app", "RUN ls -R /app > /app.list"]
        with open(os.path.join(root, "Dockerfile"), "w") as f:
            f.write("\n".join(lines) + "\n")
        compose += [
            f"  {svc}:",
            f"    image: {registry}/{ns}/{svc}:${{TAG:-latest}}",
        ]
        if from_base:
            compose += ["    build:", f"      context: ./{svc}",
                        "      additional_contexts:", "        base: service:svc-01"]
        else:
            compose += [f"    build: ./{svc}"]
    with open(os.path.join(path, "compose.yaml"), "w") as f:
        f.write("\n".join(compose) + "\n")
    git(path, "init", "-q")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "generated project")
    return [f"svc-{s:02d}" for s in range(1, services + 1)]


def git_env():
    env = clean_env()
    env.update({
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
        "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
    })
    return env


def git(path, *args):
    return subprocess.run(["git", *args], cwd=path, env=git_env(), check=True,
                          capture_output=True, text=True).stdout.strip()


def clean_env():
    return {k: v for k, v in os.environ.items() if k not in STRIPPED_ENV}


# ------------------------------------------------------------------------------------------------
# Running and timing commands


class Step:
    """Runs commands under /usr/bin/time -v, appending their output to one log file."""

    def __init__(self, cwd, log_path, timeout):
        self.cwd, self.log_path, self.timeout = cwd, log_path, timeout
        self.steps = []

    def run(self, name, cmd, env_extra=None):
        env = clean_env()
        env.update(env_extra or {})
        rss_file = self.log_path + ".rss"
        # When each stderr line arrived (seconds from the start): the phase breakdown of wharf's
        # JSON progress is read from these.
        self.line_times = []
        with open(self.log_path, "ab") as out:
            out.write(f"\n$ {' '.join(cmd)}   {env_extra or ''}\n".encode())
            out.flush()
            start = time.perf_counter()
            proc = subprocess.Popen([TIME, "-v", "-o", rss_file, *cmd], cwd=self.cwd, env=env,
                                    stdout=out, stderr=subprocess.PIPE)
            killer = threading.Timer(self.timeout, proc.kill)
            killer.start()
            lines = []
            for raw in proc.stderr:
                lines.append(raw)
                self.line_times.append((time.perf_counter() - start, raw.decode(errors="replace")))
            proc.wait()
            killer.cancel()
            seconds = time.perf_counter() - start
            if seconds >= self.timeout:
                raise BenchError(f"{name}: no answer after {self.timeout} s (log: {self.log_path})")
            proc.stderr = b"".join(lines)
            out.write(proc.stderr)
        rss_kib = None
        with open(rss_file) as f:
            for line in f:
                if "Maximum resident set size" in line:
                    rss_kib = int(line.rsplit(":", 1)[1])
        os.unlink(rss_file)
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").splitlines()[-15:]
            raise BenchError(f"{name} failed (exit {proc.returncode}); log: {self.log_path}\n  "
                             + "\n  ".join(tail))
        self.steps.append({"step": name, "seconds": round(seconds, 3), "max_rss_kib": rss_kib})
        return proc.stderr.decode(errors="replace")


def wharf_events(stderr):
    """What wharf said it did, from its JSON progress lines."""
    counts, notes = {}, []
    for line in stderr.splitlines():
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        kind = ev.get("event", "?")
        counts[kind] = counts.get(kind, 0) + 1
        msg = str(ev.get("message", ""))
        if kind not in ("output", "log", "unchanged") and any(w in msg.lower() for w in ("skip", "unchanged", "reus", "cached", "already")):
            notes.append(f"{ev.get('service', '-')}: {msg}")
    return counts, notes


def phases(line_times):
    """Where a wharf run spent its time, from when its JSON progress lines arrived: preparing
    (project, git, context hashing, logins, the registry lookups of the skip decision) until the
    first build starts; the builds' wall time and their summed time; what followed the last build
    until phase 2 (the last pushes); phase 2 (moving tags, manifest copies)."""
    events = []
    for t, line in line_times:
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        if isinstance(ev, dict):
            events.append((t, ev))
    if not events:
        return None
    end = line_times[-1][0]
    first = lambda kind: next((t for t, e in events if e.get("event") == kind), None)
    last = lambda kind: next((t for t, e in reversed(events) if e.get("event") == kind), None)
    moving = next((t for t, e in events if e.get("event") == "phase" and e.get("phase") == "moving"), None)
    building, last_built = first("building"), last("built")
    start_of_work = building if building is not None else (first("phase") or end)
    out = {
        "prepare": start_of_work,
        "builds_wall": (last_built - building) if building is not None and last_built is not None else 0.0,
        "build_sum": sum(float(e.get("seconds") or 0) for _, e in events if e.get("event") == "built"),
        "pushes_after_builds": (moving if moving is not None else end) - (last_built if last_built is not None else start_of_work),
        "moving_tags": (end - moving) if moving is not None else 0.0,
        "total": end,
    }
    return {k: round(v, 3) for k, v in out.items()}


def run_recipe(recipe, project, services, registry, ns, wharf, step, wharf_cache):
    """Runs one recipe once; returns the commit it released. `wharf_cache`: the folder where
    wharf remembers content digests (a runner's own: an empty one is a fresh runner's)."""
    sha = git(project, "rev-parse", "HEAD")
    prefix = f"{registry}/{ns}"
    if recipe == "wharf":
        stderr = step.run("wharf build --push", [
            wharf, "build", "--push", "--registry", prefix, "--repository", "{service}",
            "--tag", "{git_sha}", "--tag", "latest", "--progress", "json"],
            {"WHARF_CACHE_DIR": wharf_cache})
        return sha, (*wharf_events(stderr), phases(step.line_times))
    if recipe == "compose":
        for tag in (sha, "latest"):
            label = "sha" if tag == sha else "latest"
            step.run(f"compose build ({label})", ["docker", "compose", "build"], {"TAG": tag})
            step.run(f"compose push ({label})", ["docker", "compose", "push"], {"TAG": tag})
        return sha, None
    if recipe == "script":
        step.run("compose build", ["docker", "compose", "build"], {"TAG": "build"})
        for tag in (sha, "latest"):
            for svc in services:
                src, dst = f"{prefix}/{svc}:build", f"{prefix}/{svc}:{tag}"
                step.run(f"docker tag {svc}", ["docker", "tag", src, dst])
                step.run(f"docker push {svc}", ["docker", "push", dst])
        return sha, None
    raise ValueError(recipe)


# ------------------------------------------------------------------------------------------------
# The registry (distribution API v2) and the daemon's images


def registry_call(registry, method, path, headers=None):
    req = urllib.request.Request(f"http://{registry}/v2/{path}", method=method, headers=headers or {})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return resp.headers, resp.read()


def tags_of(registry, repo):
    try:
        _, body = registry_call(registry, "GET", f"{repo}/tags/list")
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return []
        raise
    return json.loads(body).get("tags") or []


def digest_of(registry, repo, tag):
    headers, _ = registry_call(registry, "HEAD", f"{repo}/manifests/{tag}", {"Accept": MANIFEST_TYPES})
    return headers.get("Docker-Content-Digest")


def check_release(registry, ns, services, sha):
    """Every service has both tags in the registry; returns the tags seen and whether `latest`
    and the SHA tag name the same manifest."""
    seen, same, missing = {}, 0, []
    for svc in services:
        repo = f"{ns}/{svc}"
        tags = tags_of(registry, repo)
        seen[svc] = sorted(tags)
        for t in (sha, "latest"):
            if t not in tags:
                missing.append(f"{repo}:{t}")
        if not missing and digest_of(registry, repo, sha) == digest_of(registry, repo, "latest"):
            same += 1
    if missing:
        raise BenchError("not in the registry after the recipe: " + ", ".join(missing))
    inputs_tags = sum(1 for tags in seen.values() for t in tags if t.startswith("wharf-inputs-"))
    return {"latest_is_sha": same, "wharf_inputs_tags": inputs_tags}


def delete_namespace(registry, ns, services):
    """Deletes every manifest of the namespace's repositories (the registry frees the blobs at its
    next garbage collection)."""
    for svc in services:
        repo = f"{ns}/{svc}"
        digests = set()
        for t in tags_of(registry, repo):
            try:
                digests.add(digest_of(registry, repo, t))
            except urllib.error.HTTPError:
                pass
        for d in filter(None, digests):
            try:
                registry_call(registry, "DELETE", f"{repo}/manifests/{d}")
            except urllib.error.HTTPError as e:
                if e.code not in (202, 404):
                    log(f"could not delete {repo}@{d}: HTTP {e.code}")


def images_under(prefix):
    out = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
                         check=True, capture_output=True, text=True).stdout
    return [ref for ref in out.split() if ref.startswith(prefix + "/")]


def remove_images(prefix):
    refs = images_under(prefix)
    for i in range(0, len(refs), 50):
        subprocess.run(["docker", "rmi", "--force", *refs[i:i + 50]], capture_output=True)
    return len(refs)


# ------------------------------------------------------------------------------------------------
# One sample: cold then no-op, for one recipe


def sample(args, recipe, run_index, services, files, blob_mib, root, run_id):
    ns = f"wharf-bench-{run_id}-{recipe}-n{services}-r{run_index}"
    work = os.path.join(root, ns)
    project = os.path.join(work, "project")
    os.makedirs(project)
    seed = int.from_bytes(os.urandom(8), "big")
    svcs = write_project(project, ns, args.registry, services, files, blob_mib, seed,
                         args.deps_seconds, args.shared_base)
    prefix = f"{args.registry}/{ns}"
    result = {"recipe": recipe, "run": run_index, "services": services, "namespace": ns}
    try:
        # Cold: nothing of this project in the daemon or the registry.
        if args.prune_build_cache:
            subprocess.run(["docker", "builder", "prune", "-af"], check=True, capture_output=True)
        remove_images(prefix)
        if any(tags_of(args.registry, f"{ns}/{s}") for s in svcs):
            raise BenchError(f"registry namespace {ns} is not empty before the cold run")
        base_before = None
        for scenario in args.scenarios:
            if scenario == "noop":
                git(project, "commit", "-q", "--allow-empty", "-m", "nothing changed")
            if scenario == "fresh":
                # A fresh runner, one service changed (the last: with --shared-base, one built
                # FROM svc-01): the daemon holds none of the images and (with
                # --prune-build-cache) no build cache; the registry holds the last release.
                base_before = digest_of(args.registry, f"{ns}/{svcs[0]}", "latest")
                with open(os.path.join(project, svcs[-1], "changed.txt"), "w") as f:
                    f.write(os.urandom(8).hex() + "\n")
                git(project, "add", "-A")
                git(project, "commit", "-q", "-m", "one service changed")
                remove_images(prefix)
                if args.prune_build_cache:
                    subprocess.run(["docker", "builder", "prune", "-af"], check=True, capture_output=True)
            step = Step(project, os.path.join(work, f"{scenario}.log"), args.timeout)
            # The runner's own cache of content digests: cold and no-op run on one machine,
            # a fresh runner starts without one.
            wharf_cache = os.path.join(work, "wharf-cache-fresh" if scenario == "fresh" else "wharf-cache")
            start = time.perf_counter()
            sha, events = run_recipe(recipe, project, svcs, args.registry, ns, args.wharf, step,
                                     wharf_cache)
            seconds = time.perf_counter() - start
            check = check_release(args.registry, ns, svcs, sha)
            entry = {"seconds": round(seconds, 3), "commit": sha, "steps": step.steps, **check}
            if scenario == "fresh":
                # Whether the unchanged svc-01 (with --shared-base: the base) kept its image.
                entry["base_kept"] = digest_of(args.registry, f"{ns}/{svcs[0]}", sha) == base_before
            if recipe == "wharf":
                counts, notes, entry["phases"] = events
                entry["max_rss_kib"] = step.steps[0]["max_rss_kib"]
                entry["events"] = counts
                entry["built"] = counts.get("built", 0)
                # Services whose inputs the registry already holds: tagged there, not rebuilt.
                entry["unchanged"] = counts.get("unchanged", 0)
                entry["skip_notes"] = notes
            else:
                entry["max_rss_kib"] = max(s["max_rss_kib"] or 0 for s in step.steps)
            result[scenario] = entry
            extra = ""
            if recipe == "wharf":
                extra = (f", built {entry['built']}/{services}, unchanged {entry['unchanged']}, peak RSS {entry['max_rss_kib'] / 1024:.1f} MiB"
                         f", wharf-inputs tags {entry['wharf_inputs_tags']}")
            if "base_kept" in entry:
                extra += f", svc-01 kept its digest: {entry['base_kept']}"
            log(f"{LABELS[recipe]:<52} N={services:<3} run {run_index} {scenario:<5} {seconds:8.2f} s{extra}")
    finally:
        if not args.keep:
            remove_images(prefix)
            try:
                delete_namespace(args.registry, ns, svcs)
            except (urllib.error.URLError, OSError) as e:
                log(f"could not clean registry namespace {ns}: {e}")
            shutil.rmtree(work, ignore_errors=True)
    return result


# ------------------------------------------------------------------------------------------------
# Reports


def median(samples, recipe, scenario):
    values = [s[scenario]["seconds"] for s in samples if s["recipe"] == recipe and scenario in s]
    return statistics.median(values) if values else None


def fmt(x, spec=".2f"):
    return "—" if x is None else format(x, spec)


SCENARIO_NAMES = {"cold": "cold", "noop": "no-op", "fresh": "fresh runner"}


def main_table(samples, recipes, scenarios):
    base = {sc: median(samples, BASELINE, sc) for sc in scenarios}
    head = "| recipe |" + "".join(f" {SCENARIO_NAMES[sc]} median s |" for sc in scenarios)
    head += "".join(f" {SCENARIO_NAMES[sc]} ratio vs (b) |" for sc in scenarios) + " peak RSS MiB (max) |"
    lines = [head, "|---|" + "---:|" * (2 * len(scenarios) + 1)]
    for r in recipes:
        values = {sc: median(samples, r, sc) for sc in scenarios}
        ratio = lambda v, sc: None if v is None or not base[sc] else v / base[sc]
        rss = "—"
        if r == "wharf":
            kib = [s[sc]["max_rss_kib"] for s in samples if s["recipe"] == r for sc in scenarios if sc in s]
            rss = fmt(max(kib) / 1024, ".1f") if kib else "—"
        cells = [fmt(values[sc]) for sc in scenarios] + [fmt(ratio(values[sc], sc)) for sc in scenarios]
        lines.append(f"| {LABELS[r]} | " + " | ".join(cells) + f" | {rss} |")
    return "\n".join(lines)


def runs_table(samples, recipes, scenarios):
    head = "| recipe | run |" + "".join(f" {SCENARIO_NAMES[sc]} s |" for sc in scenarios)
    head += " wharf built | wharf unchanged | svc-01 digest kept (fresh) |"
    lines = [head, "|---|---:|" + "---:|" * len(scenarios) + "---|---|---|"]
    for r in recipes:
        for s in sorted((s for s in samples if s["recipe"] == r), key=lambda s: s["run"]):
            built = unchanged = "—"
            if r == "wharf":
                built = " / ".join(str(s[sc]["built"]) for sc in scenarios if sc in s) + f" of {s['services']}"
                unchanged = " / ".join(str(s[sc]["unchanged"]) for sc in scenarios if sc in s)
            kept = str(s["fresh"]["base_kept"]).lower() if "fresh" in s else "—"
            cells = [fmt(s[sc]["seconds"]) if sc in s else "—" for sc in scenarios]
            lines.append(f"| {LABELS[r]} | {s['run']} | " + " | ".join(cells) + f" | {built} | {unchanged} | {kept} |")
    return "\n".join(lines)


PHASES = [("prepare", "prepare (project, git, hashing, logins, skip lookups)"),
          ("builds_wall", "builds, first start to last end (wall)"),
          ("build_sum", "builds, summed over services"),
          ("pushes_after_builds", "pushes after the last build (phase 1 tail)"),
          ("moving_tags", "phase 2: moving tags (manifest copies)"),
          ("total", "total")]


def phase_table(samples, scenario):
    rows = [s[scenario]["phases"] for s in samples
            if s["recipe"] == "wharf" and scenario in s and s[scenario].get("phases")]
    if not rows:
        return None
    lines = [f"| wharf {SCENARIO_NAMES[scenario]} release: phase | median s | share of total |", "|---|---:|---:|"]
    total = statistics.median(r["total"] for r in rows) or None
    for key, label in PHASES:
        m = statistics.median(r[key] for r in rows)
        share = "—" if key in ("build_sum", "total") or not total else f"{m / total:.0%}"
        lines.append(f"| {label} | {m:.2f} | {share} |")
    return "\n".join(lines)


def scale_table(samples, recipes, sizes):
    head = "| N |" + "".join(f" {r} cold s | {r} no-op s |" for r in recipes)
    if "wharf" in recipes:
        head += " wharf peak RSS MiB |"
    lines = [head, "|" + "---:|" * (head.count("|") - 1)]
    for n in sizes:
        row = [s for s in samples if s["services"] == n]
        cells = [str(n)]
        for r in recipes:
            cells += [fmt(median(row, r, "cold")), fmt(median(row, r, "noop"))]
        if "wharf" in recipes:
            kib = [s[sc]["max_rss_kib"] for s in row if s["recipe"] == "wharf" for sc in ("cold", "noop")]
            cells.append(fmt(max(kib) / 1024, ".1f") if kib else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------


def preflight(args):
    problems = []
    if not os.access(TIME, os.X_OK):
        problems.append(f"{TIME} is missing: install GNU time (Debian: apt-get install time)")
    if not (os.path.isfile(args.wharf) and os.access(args.wharf, os.X_OK)):
        problems.append(f"wharf binary not found at {args.wharf}: cargo build --release --locked --bin wharf, or --wharf PATH")
    for tool in ("git", "docker"):
        if shutil.which(tool) is None:
            problems.append(f"{tool} not found on PATH")
    if not problems:
        if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0:
            problems.append("`docker compose` (v2 CLI plugin) does not run: scripts/testbed up")
        if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode != 0:
            problems.append(f"the base image {BASE_IMAGE} is not in the daemon (or no daemon answers): scripts/testbed up")
        try:
            registry_call(args.registry, "GET", "")
        except (urllib.error.URLError, OSError) as e:
            problems.append(f"the registry http://{args.registry} does not answer ({e}): scripts/testbed up")
    if problems:
        for p in problems:
            log(f"error: {p}")
        sys.exit(2)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=6, help="services per project (default 6)")
    p.add_argument("--runs", type=int, default=None, help="runs per recipe and scenario (default 3; 1 with --scale)")
    p.add_argument("--blob-mib", type=int, default=8, help="size of each service's random blob in MiB (default 8)")
    p.add_argument("--files", type=int, default=500, help="small files (1-4 KiB) per service (default 500)")
    p.add_argument("--scale", help="comma-separated service counts (e.g. 1,6,20,50): the scale table instead of --services")
    p.add_argument("--recipes", default=",".join(RECIPES), help=f"subset of {','.join(RECIPES)} (default: all)")
    p.add_argument("--wharf", default=os.path.join(REPO, "target", "release", "wharf"),
                   help="the wharf binary (default: target/release/wharf of this repository)")
    p.add_argument("--registry", default=os.environ.get("WHARF_TEST_PLAIN_REGISTRY") or "127.0.0.1:5000",
                   help="plain-HTTP registry without auth (default: $WHARF_TEST_PLAIN_REGISTRY or 127.0.0.1:5000)")
    p.add_argument("--out", help="write every measurement as JSON to this file")
    p.add_argument("--keep", action="store_true", help="keep generated projects, logs, local images and pushed manifests")
    p.add_argument("--workdir", help="where projects are generated (default: a new folder in the system temp dir)")
    p.add_argument("--prune-build-cache", action="store_true",
                   help="run `docker builder prune -af` before every cold run (empties the build cache of the WHOLE daemon)")
    p.add_argument("--timeout", type=int, default=3600, help="seconds before one command counts as hung (default 3600)")
    p.add_argument("--scenarios", default="cold,noop",
                   help="of cold,noop,fresh, in order (default cold,noop); fresh: one service changed on a "
                        "runner without the images (and, with --prune-build-cache, without build cache)")
    p.add_argument("--deps-seconds", type=int, default=0,
                   help="each service runs a dependency step that long before its sources are copied (default 0: none)")
    p.add_argument("--shared-base", action="store_true",
                   help="svc-02… build FROM svc-01's image; fresh then changes a dependent only")
    args = p.parse_args()
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for sc in args.scenarios:
        if sc not in SCENARIO_NAMES:
            p.error(f"unknown scenario {sc!r}: one of {', '.join(SCENARIO_NAMES)}")
    if args.scenarios[0] != "cold":
        p.error("the scenarios start with cold (the others follow a release)")
    args.wharf = os.path.abspath(args.wharf)
    args.recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    for r in args.recipes:
        if r not in RECIPES:
            p.error(f"unknown recipe {r!r}: one of {', '.join(RECIPES)}")
    try:
        args.sizes = [int(x) for x in args.scale.split(",")] if args.scale else [args.services]
    except ValueError:
        p.error(f"--scale takes comma-separated numbers, not {args.scale!r}")
    if args.runs is None:
        args.runs = 1 if args.scale else 3
    if min(args.sizes) < 1 or args.runs < 1 or args.blob_mib < 0 or args.files < 0:
        p.error("--services/--scale and --runs must be at least 1; --blob-mib and --files at least 0")
    return args


def main():
    args = parse_args()
    preflight(args)
    run_id = f"{int(time.time()) % 100000:05d}{os.urandom(2).hex()}"
    root = args.workdir or tempfile.mkdtemp(prefix="wharf-bench-release-")
    os.makedirs(root, exist_ok=True)
    wharf_version = subprocess.run([args.wharf, "--version"], capture_output=True, text=True).stdout.strip()
    log(f"{wharf_version}; projects in {root}; registry {args.registry}; "
        f"N={','.join(map(str, args.sizes))}, {args.runs} run(s), {args.files} files + {args.blob_mib} MiB per service")
    samples = []
    started = time.time()
    try:
        for n in args.sizes:
            for k in range(1, args.runs + 1):
                shift = (k - 1) % len(args.recipes)
                for recipe in args.recipes[shift:] + args.recipes[:shift]:
                    samples.append(sample(args, recipe, k, n, args.files, args.blob_mib, root, run_id))
    except BenchError as e:
        log(f"error: {e}")
        sys.exit(1)
    except KeyboardInterrupt:
        log("interrupted: cleaned up (--out holds the finished samples)")
        sys.exit(130)
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(root, ignore_errors=True)
        if args.out:
            report = {
                "wharf": wharf_version, "wharf_path": args.wharf, "registry": args.registry,
                "services": args.sizes, "runs": args.runs, "files": args.files, "blob_mib": args.blob_mib,
                "prune_build_cache": args.prune_build_cache, "host": platform.node(),
                "cpus": os.cpu_count(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
                "seconds": round(time.time() - started, 1),
                "scenarios": args.scenarios, "deps_seconds": args.deps_seconds, "shared_base": args.shared_base,
                "medians": {r: {sc: median(samples, r, sc) for sc in args.scenarios} for r in args.recipes},
                "samples": samples,
            }
            with open(args.out, "w") as f:
                json.dump(report, f, indent=2)
                f.write("\n")
    print(f"\n{wharf_version}; {args.files} files of 1-4 KiB + {args.blob_mib} MiB blob per service; "
          f"{args.runs} run(s); ratio = recipe time / (b) time (below 1: faster than (b))\n")
    if args.scale:
        print(scale_table(samples, args.recipes, args.sizes))
    else:
        print(f"{args.services} services, medians of {args.runs} runs:\n")
        print(main_table(samples, args.recipes, args.scenarios))
        print()
        print(runs_table(samples, args.recipes, args.scenarios))
        for sc in args.scenarios:
            table = phase_table(samples, sc)
            if table:
                print()
                print(table)
    notes = [f"{s['namespace']} no-op: {n}" for s in samples if s["recipe"] == "wharf" and "noop" in s
             for n in s["noop"].get("skip_notes", [])]
    if "wharf" in args.recipes and "noop" in args.scenarios:
        ws = [s for s in samples if s["recipe"] == "wharf"]
        built, unchanged = sum(s["noop"]["built"] for s in ws), sum(s["noop"]["unchanged"] for s in ws)
        inputs = sum(s["noop"]["wharf_inputs_tags"] for s in ws)
        print(f"\nwharf no-op runs: built {built} and reported {unchanged} unchanged of "
              f"{sum(s['services'] for s in ws)} services; {inputs} wharf-inputs-* tags in their namespaces")
        for n in notes[:20]:
            print(f"  {n}")


if __name__ == "__main__":
    main()
