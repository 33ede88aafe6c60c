#!/bin/sh
# The cluster demo (`make demo-cluster`): one NATS server with JetStream
# (bin/nellis-nats), a simulated Nellis (Caddyfile.demo-sim) and three
# gateways a, b and c (Caddyfile.demo-cluster) on localhost, each serving
# the demo page. Ctrl-C stops them all: the gateways first (each hands its
# products over and leaves), then the simulator, then NATS.
# Run from the repository's root after `make build` and building
# bin/nellis-nats (the make target does both).
set -u

NATS_PORT=${NATS_PORT:-4222}
DEMO_DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/nellis-demo-cluster.XXXXXX")}
export NATS_PORT DEMO_DIR

gateways=""
others=""
failed=0

stop() {
	trap - INT TERM EXIT
	echo
	echo "stopping the gateways…"
	for pid in $gateways; do kill -TERM "$pid" 2>/dev/null; done
	for pid in $gateways; do wait "$pid" 2>/dev/null; done
	echo "stopping the simulator and NATS…"
	for pid in $others; do kill -TERM "$pid" 2>/dev/null; done
	for pid in $others; do wait "$pid" 2>/dev/null; done
	echo "stopped; logs and state are in $DEMO_DIR"
	exit "$failed"
}
trap stop INT TERM EXIT

# Every process gets a session of its own, so the terminal's Ctrl-C
# reaches only this script, which stops them in order: NATS must outlive
# the gateways for them to hand their products over, and a second SIGINT
# would make a gateway quit without its graceful stop.
setsid bin/nellis-nats -listen "127.0.0.1:$NATS_PORT" -store "$DEMO_DIR/nats" 2>"$DEMO_DIR/nats.log" &
others="$!"
setsid bin/caddy run --config Caddyfile.demo-sim --adapter caddyfile 2>"$DEMO_DIR/sim.log" &
others="$! $others"

# started waits up to 20 s until log holds ready, and fails with the log's
# end if process pid ends first or it never does.
started() { # name pid log ready
	i=0
	until grep -q "$4" "$3" 2>/dev/null; do
		i=$((i + 1))
		if ! kill -0 "$2" 2>/dev/null || [ $i -gt 200 ]; then
			echo "$1 did not start (is its port in use?); the end of $3:"
			tail -n 5 "$3"
			failed=1
			exit 1
		fi
		sleep 0.1
	done
}

# NATS must answer before the gateways dial it: a gateway whose first
# connection fails does not start.
started nellis-nats "${others##* }" "$DEMO_DIR/nats.log" "ready on"
started "the simulator" "${others%% *}" "$DEMO_DIR/sim.log" "serving initial configuration"

n=1
for node in a b c; do
	NODE=$node PORT=$((8080 + n)) ADMIN_PORT=$((2020 + n)) \
		setsid bin/caddy run --config Caddyfile.demo-cluster --adapter caddyfile 2>"$DEMO_DIR/$node.log" &
	gateways="$gateways $!"
	echo "$!" >"$DEMO_DIR/$node.pid"
	n=$((n + 1))
done
for node in a b c; do
	started "node $node" "$(cat "$DEMO_DIR/$node.pid")" "$DEMO_DIR/$node.log" "serving initial configuration"
done

cat <<MSG

The cluster demo runs (NATS on 127.0.0.1:$NATS_PORT, the simulator on 127.0.0.1:9081):
  node a  http://localhost:8081   pid $(cat "$DEMO_DIR/a.pid")
  node b  http://localhost:8082   pid $(cat "$DEMO_DIR/b.pid")
  node c  http://localhost:8083   pid $(cat "$DEMO_DIR/c.pid")
Open two of them. Each page names its node; one node owns each lot's
upstream stream (bin/caddy nellis-status --address localhost:2021 shows
node a's feeds, 2022 b's, 2023 c's). Kill a node without letting it hand over:
  kill -9 \$(cat $DEMO_DIR/b.pid)
and watch the prices go on on the other pages: its lots get a new owner
within the 3 s lease. Ctrl-C stops everything. Logs: $DEMO_DIR
MSG

# Wait for Ctrl-C (or until every gateway has ended).
for pid in $gateways; do wait "$pid" 2>/dev/null; done
echo "every gateway has ended"
