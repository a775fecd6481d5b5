# Sourced by scripts/testbed: the other platform. QEMU user emulation registered through
# binfmt_misc (Debian's qemu-user-static and binfmt-support), so the engines run foreign RUN
# steps, and the base image for linux/amd64 and linux/arm64:
#
#   wharf-test/busybox:1          the host's platform (as before)
#   wharf-test/busybox:1-amd64    linux/amd64 (on an amd64 host: the same image as :1)
#   wharf-test/busybox:1-arm64    linux/arm64 (on an amd64 host: Debian's busybox-static:arm64)
#   127.0.0.1:5000/wharf-test/busybox:1
#                                 an image index in the plain registry naming both, for
#                                 `FROM` in builds of either platform (and engines that pull)
#
# The foreign image is built with the classic builder (`FROM scratch`, `COPY`): it runs no
# step, so it needs no emulation.

HOST_ARCH=$(dpkg --print-architecture 2>/dev/null || echo unknown)
case $HOST_ARCH in
amd64) FOREIGN_ARCH=arm64 ;;
arm64) FOREIGN_ARCH=amd64 ;;
*) FOREIGN_ARCH= ;;
esac
BASE_IMAGE_AMD64=$BASE_IMAGE-amd64
BASE_IMAGE_ARM64=$BASE_IMAGE-arm64
BASE_REPOSITORY=${BASE_IMAGE%%:*}
BASE_TAG=${BASE_IMAGE##*:}
BASE_INDEX=$PLAIN_REGISTRY/$BASE_IMAGE
BINFMT=/proc/sys/fs/binfmt_misc
MEDIA_MANIFEST=application/vnd.docker.distribution.manifest.v2+json
MEDIA_LIST=application/vnd.docker.distribution.manifest.list.v2+json

need_platform_host() {
	[ -n "$FOREIGN_ARCH" ] || die "the bed runs on amd64 or arm64 hosts, not $HOST_ARCH"
}

# `uname -m` of a Debian architecture, and so the name of its QEMU binfmt handler.
uname_of() { # arch
	case $1 in
	amd64) echo x86_64 ;;
	arm64) echo aarch64 ;;
	esac
}

base_image_of() { # arch
	case $1 in
	amd64) echo "$BASE_IMAGE_AMD64" ;;
	arm64) echo "$BASE_IMAGE_ARM64" ;;
	esac
}

binfmt_mounted() { [ -f "$BINFMT/status" ]; }

# The handler runs foreign binaries inside containers only with the F flag (the interpreter is
# opened when registered, not looked up in the container's file system).
qemu_registered() {
	local handler=$BINFMT/qemu-$(uname_of "$FOREIGN_ARCH")
	[ "$(head -n 1 "$handler" 2>/dev/null)" = enabled ] && grep -q '^flags: .*F' "$handler"
}

# Mounted before the packages are installed: their postinst registers the handlers only then.
ensure_binfmt_mounted() {
	binfmt_mounted && return 0
	say "mounting binfmt_misc at $BINFMT"
	mount -t binfmt_misc binfmt_misc "$BINFMT" || die "cannot mount binfmt_misc at $BINFMT"
}

# Packages already installed (a machine that rebooted, so binfmt_misc came back empty):
# register the handler again.
ensure_qemu_registered() {
	qemu_registered && return 0
	local handler=qemu-$(uname_of "$FOREIGN_ARCH")
	say "registering $handler with binfmt_misc"
	update-binfmts --enable "$handler" >>"$LOGS/binfmt.log" 2>&1 || true
	qemu_registered || die "QEMU's $handler handler is not registered with the F flag (log: $LOGS/binfmt.log)"
}

image_arch() { docker image inspect -f '{{.Architecture}}' "$1" 2>/dev/null; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null; }
foreign_base_present() { [ "$(image_arch "$(base_image_of "$FOREIGN_ARCH")")" = "$FOREIGN_ARCH" ]; }
foreign_arch_added() { dpkg --print-foreign-architectures | grep -qx "$FOREIGN_ARCH"; }

# The foreign busybox-static comes from the system's own Debian release, so apt needs the
# architecture added (once; the next apt-get update then fetches its lists too).
ensure_foreign_arch() {
	foreign_arch_added && return 0
	say "adding the dpkg architecture $FOREIGN_ARCH"
	dpkg --add-architecture "$FOREIGN_ARCH"
	APT_UPDATED=
}

# A folder with busybox and a link for each of its applets, as Debian's busybox-static lays it
# out: the image's root file system.
busybox_rootfs() { # busybox-binary root
	local root=$2 applet
	rm -rf "$root"
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp}
	chmod 1777 "$root/tmp" "$root/var/tmp"
	cp "$1" "$root/bin/busybox"
	# --list-full names each applet with its usual directory (bin/sh, usr/bin/env, ...). The
	# host's busybox lists them: the foreign one is the same Debian version.
	while read -r applet; do
		[ "$applet" = bin/busybox ] && continue
		[ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
	done < <(/bin/busybox --list-full)
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"
}

build_foreign_base() {
	local image dir=$STATE/base-$FOREIGN_ARCH deb
	image=$(base_image_of "$FOREIGN_ARCH")
	say "building $image from Debian's busybox-static:$FOREIGN_ARCH"
	rm -rf "$dir"
	mkdir -p "$dir/deb"
	if ! (cd "$dir/deb" && apt-get download -q "busybox-static:$FOREIGN_ARCH") >>"$LOGS/apt.log" 2>&1; then
		# Lists from before the architecture was added: fetch them, then try again.
		apt-get update -q >>"$LOGS/apt.log" 2>&1 || die "apt-get update failed (log: $LOGS/apt.log)"
		APT_UPDATED=1
		(cd "$dir/deb" && apt-get download -q "busybox-static:$FOREIGN_ARCH") >>"$LOGS/apt.log" 2>&1 ||
			die "apt-get download busybox-static:$FOREIGN_ARCH failed (log: $LOGS/apt.log)"
	fi
	deb=$(ls "$dir"/deb/busybox-static_*.deb)
	dpkg-deb -x "$deb" "$dir/unpacked"
	busybox_rootfs "$dir/unpacked/bin/busybox" "$dir/rootfs"
	# No ARG before the first COPY: the 20.10 classic builder would record that step's image as
	# the host's platform and refuse the COPY onto it.
	printf '%s\n' 'FROM scratch' 'COPY rootfs/ /' \
		'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["sh"]' >"$dir/Dockerfile"
	DOCKER_BUILDKIT=0 docker build -q --platform "linux/$FOREIGN_ARCH" -t "$image" "$dir" >>"$LOGS/base-$FOREIGN_ARCH.log" 2>&1 ||
		die "building $image failed (log: $LOGS/base-$FOREIGN_ARCH.log)"
	rm -rf "$dir"
}

# The host's platform under its per-platform name too: the same image as $BASE_IMAGE.
ensure_host_base_alias() {
	local alias
	alias=$(base_image_of "$HOST_ARCH")
	[ "$(image_id "$alias")" = "$(image_id "$BASE_IMAGE")" ] || docker tag "$BASE_IMAGE" "$alias"
}

# `digest size` of a manifest in the plain registry.
plain_manifest() { # repository reference media-type
	curl -sS --noproxy '*' --max-time 10 -I -H "Accept: $3" "http://$PLAIN_REGISTRY/v2/$1/manifests/$2" 2>/dev/null |
		tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { d = $2 } tolower($1) == "content-length:" { s = $2 } END { if (d != "") print d, s }'
}

# The index as the plain registry serves it, one `arch digest` line per platform.
base_index_platforms() {
	curl -sS --noproxy '*' --max-time 10 -H "Accept: $MEDIA_LIST" \
		"http://$PLAIN_REGISTRY/v2/$BASE_REPOSITORY/manifests/$BASE_TAG" 2>/dev/null |
		python3 -c '
import json, sys
try:
    doc = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
for m in doc.get("manifests", []):
    print(m["platform"]["architecture"], m["digest"])
'
}

# The per-platform images the index was last written from (their local IDs).
BASE_INDEX_RECORD=$STATE/base-index.ids
base_ids() { echo "amd64=$(image_id "$BASE_IMAGE_AMD64") arm64=$(image_id "$BASE_IMAGE_ARM64")"; }
base_index_current() {
	[ -f "$BASE_INDEX_RECORD" ] && [ "$(cat "$BASE_INDEX_RECORD")" = "$(base_ids)" ] &&
		[ "$(base_index_platforms | awk '{print $1}' | sort | tr '\n' ' ')" = "amd64 arm64 " ]
}

# Pushes each platform's image to the plain registry (as :1-amd64, :1-arm64), then writes the
# index naming both under :1 through the registry API.
ensure_base_index() {
	base_index_current && return 0
	say "writing the image index $BASE_INDEX (linux/amd64 + linux/arm64)"
	local arch pushed entries=() digest size
	for arch in amd64 arm64; do
		pushed=$PLAIN_REGISTRY/$(base_image_of "$arch")
		docker tag "$(base_image_of "$arch")" "$pushed"
		docker push "$pushed" >>"$LOGS/base-index.log" 2>&1 || die "docker push $pushed failed (log: $LOGS/base-index.log)"
		docker image rm "$pushed" >/dev/null 2>&1 || true
		read -r digest size < <(plain_manifest "$BASE_REPOSITORY" "${pushed##*:}" "$MEDIA_MANIFEST") ||
			die "the plain registry does not serve $pushed"
		entries+=("{\"mediaType\":\"$MEDIA_MANIFEST\",\"digest\":\"$digest\",\"size\":$size,\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"}}")
	done
	local index
	index="{\"schemaVersion\":2,\"mediaType\":\"$MEDIA_LIST\",\"manifests\":[$(IFS=,; echo "${entries[*]}")]}"
	local code
	code=$(curl -sS --noproxy '*' --max-time 10 -o "$LOGS/base-index.put" -w '%{http_code}' -X PUT \
		-H "Content-Type: $MEDIA_LIST" --data-binary "$index" \
		"http://$PLAIN_REGISTRY/v2/$BASE_REPOSITORY/manifests/$BASE_TAG" 2>>"$LOGS/base-index.log" || true)
	[ "$code" = 201 ] || die "the plain registry refused the index (HTTP $code; answer: $LOGS/base-index.put)"
	base_ids >"$BASE_INDEX_RECORD"
}

# A classic build of the foreign base with a RUN step: QEMU runs it.
foreign_run_check() {
	local ctx=$STATE/qemu-check tag=wharf-testbed/qemu-check:latest out
	rm -rf "$ctx" && mkdir -p "$ctx"
	printf 'FROM %s\nRUN echo "arch=$(uname -m)" # %s\n' "$(base_image_of "$FOREIGN_ARCH")" "$(date +%s%N)" >"$ctx/Dockerfile"
	out=$(DOCKER_BUILDKIT=0 docker build --platform "linux/$FOREIGN_ARCH" -t "$tag" "$ctx" 2>&1) || true
	echo "$out" >"$LOGS/qemu-check.log"
	docker image rm -f "$tag" >/dev/null 2>&1 || true
	rm -rf "$ctx"
	grep -qx "arch=$(uname_of "$FOREIGN_ARCH")" <<<"$out"
}

check_platforms() {
	if [ -z "$FOREIGN_ARCH" ]; then
		bad "host architecture $HOST_ARCH: the bed provides amd64 and arm64 only"
		return
	fi
	local handler=qemu-$(uname_of "$FOREIGN_ARCH")
	if ! binfmt_mounted; then
		bad "binfmt_misc is not mounted at $BINFMT (run scripts/testbed up)"
	elif ! qemu_registered; then
		bad "QEMU's $handler handler is not registered with binfmt_misc (run scripts/testbed up)"
	elif foreign_run_check; then
		ok "QEMU $handler: a linux/$FOREIGN_ARCH RUN step prints $(uname_of "$FOREIGN_ARCH")"
	else
		bad "QEMU $handler is registered, but a linux/$FOREIGN_ARCH RUN step failed (log: $LOGS/qemu-check.log)"
	fi

	local arch image have=()
	for arch in amd64 arm64; do
		image=$(base_image_of "$arch")
		if [ "$(image_arch "$image")" = "$arch" ]; then
			have+=("$image")
		else
			bad "base image $image (linux/$arch) is missing"
		fi
	done
	local platforms
	platforms=$(base_index_platforms | awk '{print $1}' | sort | tr '\n' ' ')
	if [ "$platforms" = "amd64 arm64 " ]; then
		ok "base images ${have[*]}; index $BASE_INDEX (amd64, arm64)"
	else
		bad "the plain registry has no index $BASE_INDEX with amd64 and arm64 (got: ${platforms:-nothing})"
	fi
}
