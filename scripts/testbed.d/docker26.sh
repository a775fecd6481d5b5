# Sourced by scripts/testbed: a second, current engine beside the system's Docker 20.10 —
# Docker 26.1 with the containerd image store (one name can hold every platform of an image),
# from Debian trixie's docker.io, docker-cli and containerd packages unpacked into the bed's
# folder, never installed. The system's runc (bookworm's) runs its containers: trixie's needs a newer glibc.
#
# It has its own socket, data root, exec root and bridge; it starts its own containerd. It
# never touches docker0, the system engine's bridge: started without a bridge of its own
# ("bridge": "none"), dockerd 26 deletes docker0 and every RUN step on the 20.10 engine fails.

D26_NAME=docker26
D26_DIR=$STATE/docker26
D26_ROOT=$D26_DIR/root
D26_RUN=/run/wharf-d26
D26_SOCKET=$D26_RUN/docker.sock
D26_HOST=unix://$D26_SOCKET
D26_BRIDGE=wharf-d26
D26_BRIDGE_ADDR=10.226.26.1/24
D26_MAJOR=26
D26_MIN_API=1.45
D26_SUITE=trixie

# The engine's own CLI (26.1) against its socket.
d26() { "$D26_ROOT/usr/bin/docker" -H "$D26_HOST" "$@"; }

d26_installed() { [ -x "$D26_ROOT/usr/sbin/dockerd" ] && [ -x "$D26_ROOT/usr/bin/containerd" ] && [ -x "$D26_ROOT/usr/bin/docker" ]; }
d26_answers() { d26_installed && timeout 20 "$D26_ROOT/usr/bin/docker" -H "$D26_HOST" info >/dev/null 2>&1; }

# deb.debian.org's trixie through a private apt list: the system's sources, lists and caches
# stay as they are.
d26_apt() { # apt-get arguments...
	local apt=$D26_DIR/apt
	apt-get -q -o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
		-o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" \
		-o APT::Architectures="$HOST_ARCH" -o APT::Architecture="$HOST_ARCH" \
		-o APT::Sandbox::User=root "$@"
}

install_d26() {
	local apt=$D26_DIR/apt debs=$D26_DIR/debs log=$LOGS/docker26-install.log deb version
	say "fetching Docker $D26_MAJOR from Debian $D26_SUITE (docker.io, docker-cli, containerd; log: $log)"
	mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
	echo "deb http://deb.debian.org/debian $D26_SUITE main" >"$apt/sources.list"
	d26_apt update >>"$log" 2>&1 || {
		tail -n 20 "$log" >&2
		die "apt-get update of the private $D26_SUITE list failed (log: $log)"
	}
	rm -rf "$debs" "$D26_ROOT"
	mkdir -p "$debs"
	(cd "$debs" && d26_apt download docker.io docker-cli containerd) >>"$log" 2>&1 || {
		tail -n 20 "$log" >&2
		die "apt-get download docker.io docker-cli containerd from $D26_SUITE failed (log: $log)"
	}
	version=$(dpkg-deb -f "$debs"/docker.io_*.deb Version)
	case $version in
	"$D26_MAJOR".*) ;;
	*) die "Debian $D26_SUITE's docker.io is $version, not Docker $D26_MAJOR" ;;
	esac
	for deb in "$debs"/*.deb; do
		dpkg-deb -x "$deb" "$D26_ROOT"
	done
	rm -rf "$debs" "$apt"
	d26_installed || die "the unpacked packages lack dockerd, containerd or docker under $D26_ROOT"
}

ensure_d26_bridge() {
	if ! ip link show "$D26_BRIDGE" >/dev/null 2>&1; then
		say "creating the bridge $D26_BRIDGE ($D26_BRIDGE_ADDR) for the second engine"
		ip link add "$D26_BRIDGE" type bridge
	fi
	ip -4 addr show dev "$D26_BRIDGE" | grep -q "inet $D26_BRIDGE_ADDR" ||
		ip addr add "$D26_BRIDGE_ADDR" dev "$D26_BRIDGE"
	ip link set "$D26_BRIDGE" up
}

# The config; the bed's own copy of the engine is restarted when it changed.
configure_d26() {
	mkdir -p "$D26_DIR"
	if write_if_changed "$D26_DIR/daemon.json" <<EOF; then
{
  "features": {"containerd-snapshotter": true},
  "bridge": "$D26_BRIDGE",
  "iptables": false,
  "ip6tables": false
}
EOF
		stop_owned "$D26_NAME"
	fi
}

start_d26() {
	mkdir -p "$D26_RUN"
	# Its own folder first on PATH: dockerd starts the containerd 1.7 it came with (and finds
	# the system's runc after it).
	start_bg "$D26_NAME" env "PATH=$D26_ROOT/usr/sbin:$D26_ROOT/usr/bin:$PATH" \
		"NO_PROXY=${NO_PROXY:+$NO_PROXY,}127.0.0.0/8,localhost,$ECR_HOST,$PUBLIC_HOST" \
		"no_proxy=${no_proxy:+$no_proxy,}127.0.0.0/8,localhost,$ECR_HOST,$PUBLIC_HOST" \
		"$D26_ROOT/usr/sbin/dockerd" --config-file "$D26_DIR/daemon.json" -H "$D26_HOST" \
		--data-root "$D26_DIR/data" --exec-root "$D26_RUN/exec" --pidfile "$D26_RUN/docker.pid"
}

# The base images, copied from the system engine. The containerd store gives loaded images IDs
# of its own, so what was loaded is recorded by the system engine's IDs.
D26_BASES_RECORD=$D26_DIR/bases.ids
d26_bases() { local i; for i in "$BASE_IMAGE" "$BASE_IMAGE_AMD64" "$BASE_IMAGE_ARM64"; do echo "$i $(image_id "$i")"; done; }
d26_bases_current() {
	[ -f "$D26_BASES_RECORD" ] && [ "$(cat "$D26_BASES_RECORD")" = "$(d26_bases)" ] || return 1
	local i
	for i in "$BASE_IMAGE" "$BASE_IMAGE_AMD64" "$BASE_IMAGE_ARM64"; do
		d26 image inspect "$i" >/dev/null 2>&1 || return 1
	done
}

ensure_d26_bases() {
	d26_bases_current && return 0
	say "loading the base images into the second engine"
	docker save "$BASE_IMAGE" "$BASE_IMAGE_AMD64" "$BASE_IMAGE_ARM64" | d26 load >>"$LOGS/docker26-load.log" 2>&1 ||
		die "loading the base images into the second engine failed (log: $LOGS/docker26-load.log)"
	d26_bases >"$D26_BASES_RECORD"
}

check_d26() {
	local version api driver
	if ! d26_installed; then
		bad "second engine: Docker $D26_MAJOR is not unpacked under $D26_ROOT (run scripts/testbed up)"
		return
	fi
	if ! version=$(timeout 20 "$D26_ROOT/usr/bin/docker" -H "$D26_HOST" version -f '{{.Server.Version}} {{.Server.APIVersion}}' 2>/dev/null); then
		bad "second engine at $D26_HOST does not answer (log: $LOGS/$D26_NAME.log)"
		return
	fi
	api=${version#* }
	version=${version% *}
	driver=$(d26 info -f '{{range .DriverStatus}}{{index . 0}}={{index . 1}} {{end}}' 2>/dev/null)
	if [ "$(printf '%s\n' "$D26_MIN_API" "$api" | sort -V | head -n 1)" != "$D26_MIN_API" ]; then
		bad "second engine at $D26_HOST speaks API $api (want $D26_MIN_API or later)"
	elif [[ $driver != *"driver-type=io.containerd.snapshotter.v1"* ]]; then
		bad "second engine at $D26_HOST does not use the containerd image store ($driver)"
	else
		local i missing=()
		for i in "$BASE_IMAGE" "$BASE_IMAGE_AMD64" "$BASE_IMAGE_ARM64"; do
			d26 image inspect "$i" >/dev/null 2>&1 || missing+=("$i")
		done
		local ctx=$STATE/d26-check tag=wharf-testbed/d26-check:latest via
		rm -rf "$ctx" && mkdir -p "$ctx"
		printf 'FROM %s\nRUN echo %s > /built\n' "$BASE_IMAGE" "$(date +%s%N)" >"$ctx/Dockerfile"
		if [ ${#missing[@]} -gt 0 ]; then
			bad "second engine at $D26_HOST lacks the base images ${missing[*]} (run scripts/testbed up)"
		elif via=$(DOCKER_HOST=$D26_HOST buildkit_build "$ctx" "$tag") && d26 image inspect "$tag" >/dev/null 2>&1; then
			ok "second engine $version (API $api) at $D26_HOST: containerd image store, base images, BuildKit RUN step works (via $via)"
		else
			bad "second engine $version at $D26_HOST answers, but a BuildKit build with a RUN step failed (log: $LOGS/buildkit-check.log)"
		fi
		d26 image rm -f "$tag" >/dev/null 2>&1 || true
		rm -rf "$ctx" "$ctx.compose.yml"
	fi
}
