# SPDX-License-Identifier: MIT
# Shared by compose/up, compose/down and tests/compose: which compose
# command to run, the project name, and the host ports. Sourced, not run.

# shellcheck shell=sh
# Scripts outside compose/ set DTX_COMPOSE_DIR before sourcing this.
DTX_COMPOSE_DIR=${DTX_COMPOSE_DIR:-$(cd "$(dirname "$0")" && pwd)}
DTX_ROOT=$(dirname "$DTX_COMPOSE_DIR")
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-dtx}"
export DTX_IMAGE="${DTX_IMAGE:-dtx:latest}"
export DTX_COORDINATOR_PORT="${DTX_COORDINATOR_PORT:-17100}"
export DTX_PARTICIPANT1_PORT="${DTX_PARTICIPANT1_PORT:-17101}"
export DTX_PARTICIPANT2_PORT="${DTX_PARTICIPANT2_PORT:-17102}"
export DTX_PARTICIPANT3_PORT="${DTX_PARTICIPANT3_PORT:-17103}"
export DTX_SAGA_PORT="${DTX_SAGA_PORT:-17104}"
export DTX_COORDINATOR2_PORT="${DTX_COORDINATOR2_PORT:-17106}"
DTX_COMPOSE_FILE="$DTX_COMPOSE_DIR/docker-compose.yml"

# Runs docker-compose 1.x when installed, else `docker compose` v2.
dtx_compose() {
	if command -v docker-compose >/dev/null 2>&1; then
		docker-compose -f "$DTX_COMPOSE_FILE" "$@"
	else
		docker compose -f "$DTX_COMPOSE_FILE" "$@"
	fi
}

# Writes the host's view of the topology (127.0.0.1 and the published
# ports) into directory $1/topology, and copies the project's
# certificates (the certs volume, through the coordinator's container)
# into $1/certs, owned by the caller, keys 0600.
dtx_host_topology() {
	mkdir -p "$1"
	cat >"$1/topology.tmp" <<X
# dtx compose project "$COMPOSE_PROJECT_NAME" as seen from the host
# (written by compose/up; the ports are published on 127.0.0.1).
coordinator    0   tls+tcp://127.0.0.1:$DTX_COORDINATOR_PORT
participant    1   tls+tcp://127.0.0.1:$DTX_PARTICIPANT1_PORT
participant    2   tls+tcp://127.0.0.1:$DTX_PARTICIPANT2_PORT
participant    3   tls+tcp://127.0.0.1:$DTX_PARTICIPANT3_PORT
saga           4   tls+tcp://127.0.0.1:$DTX_SAGA_PORT
client         5
coordinator    6   tls+tcp://127.0.0.1:$DTX_COORDINATOR2_PORT
X
	mv "$1/topology.tmp" "$1/topology"
	rm -rf "$1/certs"
	docker cp "$(dtx_compose ps -q coordinator)":/etc/dtx/certs "$1/certs" &&
	    chmod 0700 "$1/certs" && chmod 0600 "$1/certs"/*.key
}

# Waits until every container of the project runs and is healthy, at most
# $1 seconds; prints the state of each when it gives up.
dtx_wait_healthy() {
	deadline=$(($(date +%s) + $1))
	while :; do
		ids=$(dtx_compose ps -q 2>/dev/null || true)
		bad=""
		n=0
		for id in $ids; do
			n=$((n + 1))
			st=$(docker inspect -f \
			    '{{index .Config.Labels "com.docker.compose.service"}}:{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}/{{.State.ExitCode}}' \
			    "$id" 2>/dev/null || echo gone:gone/gone/1)
			case "$st" in
			# The one-shot certs service is done once it exited 0.
			certs:exited/*/0) n=$((n - 1)) ;;
			*:running/healthy/* | *:running/none/*) ;;
			*) bad="$bad $id" ;;
			esac
		done
		[ "$n" -ge 6 ] && [ -z "$bad" ] && return 0
		if [ "$(date +%s)" -ge "$deadline" ]; then
			echo "compose: not healthy after $1 s:" >&2
			for id in $ids; do
				docker inspect -f \
				    '  {{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}: {{range .State.Health.Log}}{{.Output}}{{end}}{{end}}' \
				    "$id" >&2 || true
			done
			return 1
		fi
		sleep 1
	done
}

# Builds the images from the work tree ($DTX_ROOT): the build stage is
# tagged too (<image name>-build), so that `docker image prune` keeps it
# and a later rebuild only recompiles. Extra arguments go to docker build
# (e.g. -q).
dtx_build_images() {
	docker build "$@" --target build -f "$DTX_ROOT/compose/Dockerfile" \
	    -t "${DTX_IMAGE%:*}-build:latest" "$DTX_ROOT" &&
	    docker build "$@" -f "$DTX_ROOT/compose/Dockerfile" \
		-t "$DTX_IMAGE" "$DTX_ROOT"
}
