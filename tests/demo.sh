#!/bin/sh
# demo.sh - watch recommendations follow a Kafka stream (`make demo`).
#
# Starts the mock Kafka cluster, serves the first half of CollegeMsg (by
# time) from a fresh state directory, replays the second half through Kafka
# at DEMO_RATE events/s, and every DEMO_EVERY seconds prints how many events
# the server has consumed and the top 5 for one member: of the members in
# the first half, the one with the most events in the replayed half, unless
# DEMO_MEMBER says otherwise.
# Everything listens on 127.0.0.1 and is stopped at the end (or on Ctrl-C).
set -eu

TRIAD=${TRIAD_BIN:-bin/triad}
DATA=${TRIAD_DATA:-data}/CollegeMsg.txt
RATE=${DEMO_RATE:-1000}
EVERY=${DEMO_EVERY:-3}
TMP=$(mktemp -d /tmp/triad-demo.XXXXXX)
PIDS=

cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# split by time: the file is in time order already; keep it that way
sort -n -k3,3 -s "$DATA" > "$TMP/all.txt"
half=$(( $(wc -l < "$TMP/all.txt") / 2 ))
head -n "$half" "$TMP/all.txt" > "$TMP/first.txt"
tail -n +"$((half + 1))" "$TMP/all.txt" > "$TMP/second.txt"
member=${DEMO_MEMBER:-$(awk 'NR == FNR {old[$1] = old[$2] = 1; next}
	($1 in old) {n[$1]++} ($2 in old) {n[$2]++}
	END {for (m in n) print n[m], m}' "$TMP/first.txt" "$TMP/second.txt" |
	sort -k1,1nr -k2,2n | head -n 1 | cut -d' ' -f2)}

"$TRIAD" kafka-mock --partitions 1 --topic demo > "$TMP/mock.out" 2> "$TMP/mock.err" &
PIDS="$PIDS $!"
i=0
while [ ! -s "$TMP/mock.out" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
brokers=$(head -n 1 "$TMP/mock.out")
[ -n "$brokers" ] || { echo "demo: kafka-mock printed no address" >&2; exit 1; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
"$TRIAD" serve --events "$TMP/first.txt" --state "$TMP/state" \
	--listen "127.0.0.1:$port" --brokers "$brokers" --topic demo 2> "$TMP/serve.err" &
PIDS="$PIDS $!"
i=0
until curl -sf "http://127.0.0.1:$port/healthz" > /dev/null; do
	sleep 0.2; i=$((i + 1))
	[ $i -lt 150 ] || { echo "demo: server did not start:" >&2; cat "$TMP/serve.err" >&2; exit 1; }
done

echo "demo: serving $half events of $DATA on 127.0.0.1:$port; replaying the other"
echo "demo: $(wc -l < "$TMP/second.txt") through Kafka ($brokers) at $RATE/s; watching member $member"
"$TRIAD" replay "$TMP/second.txt" --brokers "$brokers" --topic demo --rate "$RATE" \
	--quiet 2> "$TMP/replay.err" &
replay=$!
PIDS="$PIDS $replay"

show() {
	applied=$(curl -s "http://127.0.0.1:$port/metrics" |
		awk '/^triad_ingest_events_total{source="kafka",result="accepted"}/ {printf "%d", $2}')
	top=$(curl -s "http://127.0.0.1:$port/recommend?member=$member&k=5" |
		sed -n 's/.*"recommendations":\[\(.*\)\]}.*/\1/p' |
		grep -o '"member":[0-9]*,"score":[^,]*,"mutual":[0-9]*' |
		sed 's/"member":\([0-9]*\),"score":\([^,]*\),"mutual":\([0-9]*\)/\1 (mutual \3)/' |
		tr '\n' ',' | sed 's/,$//; s/,/, /g')
	printf 'consumed %7s  top 5 for %s: %s\n' "$applied" "$member" "${top:-(none yet)}"
}

while kill -0 "$replay" 2>/dev/null; do
	show
	sleep "$EVERY"
done
sleep 1
show
echo "demo: replay finished; stopping"
