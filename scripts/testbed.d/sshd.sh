# Sourced by scripts/testbed: an SSH server in front of the second engine, so that ssh://
# endpoints (DOCKER_HOST, x-wharf.engines, WHARF_ENGINES) are tested against a real OpenSSH.
#
# Debian's openssh-server runs as the bed's own sshd on 127.0.0.1 with its own config, host key
# and authorized key, all under the bed's folder; the system's sshd (if any) is left alone. Its
# sessions get DOCKER_HOST of the second engine (sshd's SetEnv), so `docker system dial-stdio`
# run over it reaches Docker 26. Clients find it under the host alias wharf-ssh-engine, through
# a file in /etc/ssh/ssh_config.d that matches only that alias: OpenSSH reads the home of the
# passwd entry, not $HOME, so a per-user config could not be set for the tests.
#
# A second port of the same sshd, whose sessions have no docker CLI on their PATH, stands for a
# remote without docker (ssh://root@wharf-ssh-engine:2227).

SSHD_NAME=sshd-engine
SSHD_DIR=$STATE/sshd
SSHD_ADDR=127.0.0.1
SSHD_PORT=2226
SSHD_NO_DOCKER_PORT=2227
SSHD_ALIAS=wharf-ssh-engine
SSHD_USER=root
SSHD_ENGINE=ssh://$SSHD_USER@$SSHD_ALIAS
SSHD_NO_DOCKER=ssh://$SSHD_USER@$SSHD_ALIAS:$SSHD_NO_DOCKER_PORT
SSHD_CLIENT_CONFIG=/etc/ssh/ssh_config.d/wharf-testbed.conf

# The engine's version through the docker CLI's own ssh:// support, which runs `ssh … docker
# system dial-stdio` as wharf's client does.
sshd_engine_version() { DOCKER_HOST=$SSHD_ENGINE timeout 30 docker version -f '{{.Server.Version}}' </dev/null; }
sshd_answers() { [ -n "$(sshd_engine_version 2>/dev/null)" ]; }

ensure_sshd_keys() {
	mkdir -p "$SSHD_DIR"
	chmod 0755 "$SSHD_DIR"
	if [ ! -f "$SSHD_DIR/host_ed25519" ]; then
		ssh-keygen -q -t ed25519 -N '' -C "wharf testbed host" -f "$SSHD_DIR/host_ed25519"
		rm -f "$SSHD_DIR/known_hosts"
	fi
	[ -f "$SSHD_DIR/client_ed25519" ] ||
		ssh-keygen -q -t ed25519 -N '' -C "wharf testbed client" -f "$SSHD_DIR/client_ed25519"
	# The host key is known up front: clients check it strictly, nothing is learned on first use.
	echo "$SSHD_ALIAS $(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519.pub")" | write_if_changed "$SSHD_DIR/known_hosts" || true
	cut -d' ' -f1,2 "$SSHD_DIR/client_ed25519.pub" | write_if_changed "$SSHD_DIR/authorized_keys" || true
	chmod 0600 "$SSHD_DIR/host_ed25519" "$SSHD_DIR/client_ed25519"
	chmod 0644 "$SSHD_DIR/known_hosts" "$SSHD_DIR/authorized_keys"
}

# The server's and the client's configs; the bed's sshd is restarted when its own changed.
configure_sshd() {
	if write_if_changed "$SSHD_DIR/sshd_config" <<EOF; then
# Written by scripts/testbed; rewritten on every 'up'.
ListenAddress $SSHD_ADDR:$SSHD_PORT
HostKey $SSHD_DIR/host_ed25519
AuthorizedKeysFile $SSHD_DIR/authorized_keys
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers $SSHD_USER
UsePAM no
PidFile none
X11Forwarding no
PrintMotd no
# A second port whose sessions find no docker CLI: a remote without docker, for its error.
ListenAddress $SSHD_ADDR:$SSHD_NO_DOCKER_PORT
Match LocalPort $SSHD_PORT
	SetEnv DOCKER_HOST=$D26_HOST
Match LocalPort $SSHD_NO_DOCKER_PORT
	SetEnv PATH=/nonexistent
EOF
		stop_owned "$SSHD_NAME"
	fi
	write_if_changed "$SSHD_CLIENT_CONFIG" <<EOF || true
# Written by scripts/testbed (wharf's test bed): its sshd in front of the second Docker engine.
Host $SSHD_ALIAS
	HostName $SSHD_ADDR
	Port $SSHD_PORT
	IdentityFile $SSHD_DIR/client_ed25519
	IdentitiesOnly yes
	UserKnownHostsFile $SSHD_DIR/known_hosts
	HostKeyAlias $SSHD_ALIAS
	StrictHostKeyChecking yes
EOF
	chmod 0644 "$SSHD_CLIENT_CONFIG"
}

start_sshd() {
	# sshd's privilege separation folder, made by its init script where a service manager runs.
	mkdir -p /run/sshd
	chmod 0755 /run/sshd
	# -D: stays in the foreground (the bed tracks its PID); -e: logs to stderr (its log file).
	start_bg "$SSHD_NAME" /usr/sbin/sshd -D -e -f "$SSHD_DIR/sshd_config"
}

check_sshd() {
	local version
	if ! [ -x /usr/sbin/sshd ]; then
		bad "ssh engine: openssh-server is not installed (run scripts/testbed up)"
	elif version=$(sshd_engine_version 2>>"$LOGS/$SSHD_NAME-check.log") &&
		[ "${version%%.*}" = "$D26_MAJOR" ]; then
		ok "ssh engine $SSHD_ENGINE ($SSHD_ADDR:$SSHD_PORT, key auth): docker system dial-stdio reaches Docker $version"
	else
		bad "ssh engine $SSHD_ENGINE ($SSHD_ADDR:$SSHD_PORT) does not reach Docker $D26_MAJOR (got '${version:-}'; logs: $LOGS/$SSHD_NAME.log, $LOGS/$SSHD_NAME-check.log)"
	fi
}
