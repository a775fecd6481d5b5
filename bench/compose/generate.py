#!/usr/bin/env python3
"""Writes the benchmark project: 200 services over 5 compose files, with anchors, merge keys,
extension fields, extends and interpolation, the way large real projects are written.

usage: generate.py [OUT_DIR]   (default: corpus/platform-200/ beside this script)

The folder is also a conformance case (tests/conformance/run.py format: `args`, `about`), so the
project whose loading is timed is checked against docker compose v2 as well.

Each file defines 40 services and overrides 10 of the previous file's, so that loading merges
as well as parses. Load it with the five files in order:
  -f compose.yaml -f compose.b.yaml -f compose.c.yaml -f compose.d.yaml -f compose.e.yaml
"""
import os
import sys

FILES = ["compose.yaml", "compose.b.yaml", "compose.c.yaml", "compose.d.yaml", "compose.e.yaml"]
PER_FILE = 40


def header(part):
    return f"""x-build-{part}: &build
  context: ./services/common
  dockerfile: ${{DOCKERFILE:-Dockerfile}}
  args: &args
    BASE_IMAGE: ${{BASE_IMAGE:-wharf-test/busybox:1}}
    GIT_SHA: ${{GIT_SHA:-unknown}}
    BUILD_DATE: "${{BUILD_DATE:-1970-01-01}}"
  labels: &labels
    org.opencontainers.image.source: https://example.com/acme/platform
    org.opencontainers.image.revision: ${{GIT_SHA:-unknown}}
    com.example.part: "{part}"
  cache_from:
    - type=registry,ref=${{REGISTRY:-registry.example.com/acme}}/cache:{part}
x-service-{part}: &service
  restart: unless-stopped
  environment:
    LOG_LEVEL: ${{LOG_LEVEL:-info}}
    REGION: ${{AWS_REGION:-us-east-1}}
  networks: [backend]
"""


def service(part, n):
    name = f"{part}-svc-{n:02d}"
    profile = f"    profiles: [batch]\n" if n % 10 == 9 else ""
    if n % 8 == 7:
        return f"""  {name}:
    <<: *service
    image: ${{REGISTRY:-registry.example.com/acme}}/{name}:${{TAG:-latest}}
    extends:
      service: {part}-svc-00
{profile}"""
    return f"""  {name}:
    <<: *service
    image: ${{REGISTRY:-registry.example.com/acme}}/{name}:${{TAG:-latest}}
    build:
      <<: *build
      context: ./services/{name}
      target: ${{TARGET:-runtime}}
      args:
        <<: *args
        SERVICE: {name}
        PORT: "{8000 + n}"
        FEATURE_FLAGS: "${{FEATURES:-a,b,c}}-{n}"
      labels:
        <<: *labels
        com.example.service: {name}
      tags:
        - ${{REGISTRY:-registry.example.com/acme}}/{name}:${{GIT_SHA:-unknown}}
{profile}"""


def override(prev_part, n):
    name = f"{prev_part}-svc-{n:02d}"
    return f"""  {name}:
    build:
      args:
        OVERRIDDEN: "true"
      cache_from:
        - type=registry,ref=${{REGISTRY:-registry.example.com/acme}}/{name}:cache
      platforms: [linux/amd64, linux/arm64]
"""


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "platform-200")
    os.makedirs(out, exist_ok=True)
    parts = ["a", "b", "c", "d", "e"]
    for i, (part, fname) in enumerate(zip(parts, FILES)):
        text = ""
        if i == 0:
            text += "name: ${PROJECT_NAME:-platform}\n"
        text += header(part) + "services:\n"
        text += "".join(service(part, n) for n in range(PER_FILE))
        if i > 0:
            # Overridden services of the previous file (only those with a build section).
            text += "".join(override(parts[i - 1], n) for n in range(0, PER_FILE, 4) if n % 8 != 7)
        if i == 0:
            text += "networks:\n  backend: {}\n"
        with open(os.path.join(out, fname), "w") as f:
            f.write(text)
    with open(os.path.join(out, "args"), "w") as f:
        f.write(" ".join(f"-f {name}" for name in FILES) + " --profile batch\n")
    with open(os.path.join(out, "about"), "w") as f:
        f.write("200 services over 5 files with anchors, merge keys, extends, overrides and interpolation\n")
    print(f"wrote {len(FILES)} files, {len(FILES) * PER_FILE} services, to {out}")


if __name__ == "__main__":
    main()
