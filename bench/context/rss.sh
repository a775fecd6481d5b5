#!/usr/bin/env bash
# Peak memory of streaming a 2 GiB build context.
#
#   bench/context/rss.sh [null|daemon]
#
# Makes (once) a 2 GiB context of real random bytes — 1 file of 1 GiB, 96 of 8 MiB and 4096 of
# 64 KiB, so both the large-file and the many-files paths are exercised — then streams it with
# the same code `wharf build` uses and prints the peak resident set size that /usr/bin/time -v
# reports. `null` (the default) reads the archive stream and discards it; `daemon` sends it to
# the Docker daemon as a BuildKit build (needs the test bed: scripts/testbed up).
#
# WHARF_BENCH_DIR picks where the context is kept (default: a folder under the system temp dir).
set -euo pipefail
cd "$(dirname "$0")"
MODE=${1:-null}
DIR=${WHARF_BENCH_DIR:-${TMPDIR:-/tmp}/wharf-bench-context-2g}
LIMIT_KIB=$((100 * 1024))

[[ -x /usr/bin/time ]] || { echo "rss.sh: /usr/bin/time is missing (Debian package: time)" >&2; exit 2; }

if [[ ! -f $DIR/.complete-2g ]]; then
	echo "rss.sh: writing a 2 GiB context to $DIR (once)" >&2
	rm -rf "$DIR"
	mkdir -p "$DIR/big" "$DIR/medium" "$DIR/small"
	head -c $((1024 * 1024 * 1024)) /dev/urandom > "$DIR/big/one-gib.bin"
	for i in $(seq 1 96); do head -c $((8 * 1024 * 1024)) /dev/urandom > "$DIR/medium/$i.bin"; done
	for d in $(seq 1 64); do
		mkdir -p "$DIR/small/$d"
		for i in $(seq 1 64); do head -c 65536 /dev/urandom > "$DIR/small/$d/$i.bin"; done
	done
	printf 'FROM scratch\nCOPY big/one-gib.bin /one\n' > "$DIR/Dockerfile"
	printf '.complete-2g\n' > "$DIR/.dockerignore"
	touch "$DIR/.complete-2g"
fi
echo "rss.sh: context $(du -sh --apparent-size "$DIR" | cut -f1)" >&2

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/../../target/bench-context}
cargo build --release --quiet --manifest-path stream-context/Cargo.toml
BIN=$CARGO_TARGET_DIR/release/stream-context

ARGS=("$DIR" "$MODE")
[[ $MODE == daemon ]] && ARGS+=("wharf-bench/context:rss")
REPORT=$(mktemp)
trap 'rm -f "$REPORT"' EXIT
/usr/bin/time -v -o "$REPORT" "$BIN" "${ARGS[@]}"
grep -E "Maximum resident set size|Elapsed \(wall clock\)" "$REPORT" | sed 's/^\s*/rss.sh: /'
PEAK=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$REPORT")
[[ $MODE == daemon ]] && docker rmi -f wharf-bench/context:rss > /dev/null 2>&1 || true
if (( PEAK > LIMIT_KIB )); then
	echo "rss.sh: peak RSS ${PEAK} KiB is over the ${LIMIT_KIB} KiB budget" >&2
	exit 1
fi
echo "rss.sh: peak RSS ${PEAK} KiB, within the ${LIMIT_KIB} KiB budget"
