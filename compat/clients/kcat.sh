#!/usr/bin/env bash
# The kcat (librdkafka) client program of the compatibility suite.
#   compat/clients/kcat.sh --bootstrap 127.0.0.1:9092 --scenario produce --topic T [--group G]
# Prints one JSON line (see compat/lib/scenario.ts). kcat has no admin commands: create-topic,
# describe-group, configs, delete-records and delete-topic answer {"na":true}. Keyed records use
# partitioner=murmur2_random, the Java client's placement (librdkafka's default, consistent_random,
# hashes with CRC32 instead). Needs kcat and python3 on PATH.
set -uo pipefail

BOOTSTRAP=127.0.0.1:9092 SCENARIO=metadata TOPIC=compat GROUP=
while [ $# -gt 0 ]; do
  case "$1" in
    --bootstrap) BOOTSTRAP=$2; shift 2 ;;
    --scenario) SCENARIO=$2; shift 2 ;;
    --topic) TOPIC=$2; shift 2 ;;
    --group) GROUP=$2; shift 2 ;;
    --*) shift 2 ;;
    *) shift ;;
  esac
done
GROUP=${GROUP:-$TOPIC-group}
RECORDS=10000 PARTITIONS=6 PLACEMENT_KEYS=1000 FIRST=4000
VERSION=$(kcat -V 2>&1 | sed -n 's/.*librdkafka \([0-9.]*\).*/\1/p' | head -1)
CLIENT="kcat"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
K=(kcat -b "$BOOTSTRAP" -X socket.timeout.ms=15000 -X topic.metadata.refresh.interval.ms=2000)

emit() { # ok(true|false) detail [data-json] [na]
  python3 -c 'import json,sys
ok, detail, data, na = sys.argv[1] == "true", sys.argv[2], sys.argv[3], sys.argv[4] == "true"
out = {"client": sys.argv[5], "scenario": sys.argv[6], "ok": ok, "detail": detail}
if na: out["na"] = True
if data: out["data"] = json.loads(data)
print(json.dumps(out))' "$1" "$2" "${3:-}" "${4:-false}" "$CLIENT" "$SCENARIO"
}
na() { emit false "kcat has no $1" "" true; }
fail_with() { emit false "$1: $(tr '\n' ' ' <"$TMP/err" | cut -c1-600)"; }

# Reads the whole topic back without a group (assigns every partition): key TAB partition TAB offset TAB timestamp
read_back() {
  timeout 60 "${K[@]}" -C -t "$TOPIC" -o beginning -e -q -f '%k\t%p\t%o\t%T\n' >"$TMP/all" 2>"$TMP/err"
}

case "$SCENARIO" in
  metadata)
    if timeout 30 "${K[@]}" -L -J >"$TMP/md" 2>"$TMP/err"; then
      python3 - "$TMP/md" "$VERSION" <<'PY' >"$TMP/res" || { fail_with "metadata not parsed"; exit 0; }
import json, sys
md = json.load(open(sys.argv[1]))
b = md.get("brokers", [])
print("true" if len(b) >= 1 else "false")
print(f"{len(b)} broker(s), controller {md.get('controllerid')}, {len(md.get('topics', []))} topic(s), librdkafka {sys.argv[2]}")
PY
      emit "$(sed -n 1p "$TMP/res")" "$(sed -n 2p "$TMP/res")"
    else fail_with "kcat -L failed"; fi ;;
  create-topic) na "CreateTopics command" ;;
  produce)
    python3 -c "
for i in range($RECORDS): print(f'key-{i}\tvalue-{i}')" >"$TMP/in"
    if ! timeout 120 "${K[@]}" -P -t "$TOPIC" -K $'\t' -X partitioner=murmur2_random -X enable.idempotence=true -X acks=all \
        -X message.timeout.ms=60000 <"$TMP/in" 2>"$TMP/err"; then fail_with "kcat -P failed"; exit 0; fi
    if grep -qi "error\|fail" "$TMP/err"; then fail_with "kcat -P reported"; exit 0; fi
    if ! read_back; then fail_with "read back failed"; exit 0; fi
    python3 - "$TMP/all" $RECORDS $PLACEMENT_KEYS <<'PY' >"$TMP/res"
import json, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
n, pk = int(sys.argv[2]), int(sys.argv[3])
where = {r[0]: int(r[1]) for r in rows}
keys = {f"key-{i}" for i in range(n)}
got = keys & set(where)
placement = [where.get(f"key-{i}", -1) for i in range(pk)]
ok = len(rows) == n and got == keys
print("true" if ok else "false")
print(f"{n} records produced (idempotent, acks=all); read back {len(rows)}, distinct keys {len(got)}")
print(json.dumps({"placement": placement, "acked": len(rows)}))
PY
    emit "$(sed -n 1p "$TMP/res")" "$(sed -n 2p "$TMP/res")" "$(sed -n 3p "$TMP/res")" ;;
  consume-group)
    G=(-G "$GROUP" -X auto.offset.reset=earliest -X session.timeout.ms=10000 -X heartbeat.interval.ms=1000 -q -f '%k\n')
    timeout 90 "${K[@]}" "${G[@]}" -c $FIRST "$TOPIC" >"$TMP/first" 2>"$TMP/err"
    rc1=$?
    timeout 90 "${K[@]}" "${G[@]}" -e "$TOPIC" >"$TMP/second" 2>>"$TMP/err"
    rc2=$?
    python3 - "$TMP/first" "$TMP/second" $RECORDS $FIRST $rc1 $rc2 <<'PY' >"$TMP/res"
import json, sys
first = [l.strip() for l in open(sys.argv[1]) if l.strip()]
second = [l.strip() for l in open(sys.argv[2]) if l.strip()]
n, want_first, rc1, rc2 = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
allk = set(first) | set(second)
dup = len(first) + len(second) - len(allk)
lost = n - len(allk & {f"key-{i}" for i in range(n)})
print("true" if lost == 0 and dup == 0 and len(first) == want_first else "false")
print(f"first consumer {len(first)} (exit {rc1}), restarted consumer {len(second)} (exit {rc2}), lost {lost}, duplicates {dup}")
print(json.dumps({"first": len(first), "second": len(second), "lost": lost, "duplicates": dup}))
PY
    detail="$(sed -n 2p "$TMP/res")"
    if [ "$(sed -n 1p "$TMP/res")" != true ] && [ -s "$TMP/err" ]; then detail="$detail; stderr: $(tr '\n' ' ' <"$TMP/err" | cut -c1-400)"; fi
    emit "$(sed -n 1p "$TMP/res")" "$detail" "$(sed -n 3p "$TMP/res")" ;;
  describe-group) na "DescribeGroups command" ;;
  offsets-by-time)
    # kcat cannot set record timestamps: read them back, query the median one, and check each
    # partition's answer against the first offset whose timestamp is >= it.
    if ! read_back; then fail_with "read back failed"; exit 0; fi
    T=$(cut -f4 "$TMP/all" | sort -n | sed -n "$((RECORDS / 2 + 1))p")
    : >"$TMP/q"
    for p in $(seq 0 $((PARTITIONS - 1))); do
      for ts in "$T" -2 -1; do
        timeout 30 "${K[@]}" -Q -t "$TOPIC:$p:$ts" 2>>"$TMP/err" | sed -n "s/.*\[\([0-9]*\)\] *offset \(-\?[0-9]*\).*/$ts \1 \2/p" >>"$TMP/q"
      done
    done
    python3 - "$TMP/all" "$TMP/q" "$T" $PARTITIONS $RECORDS <<'PY' >"$TMP/res"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
q = [l.split() for l in open(sys.argv[2]) if l.strip()]
T, parts, n = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
ans = {(a[0], int(a[1])): int(a[2]) for a in q}
bad = []
for p in range(parts):
    offs = sorted((int(r[2]), int(r[3])) for r in rows if int(r[1]) == p)
    want = next((o for o, ts in offs if ts >= int(T)), -1)
    end = offs[-1][0] + 1 if offs else 0
    got = ans.get((T, p))
    if got != want and not (want == -1 and got == end): bad.append(f"p{p}: ts {got} want {want}")
    if ans.get(("-2", p)) != (offs[0][0] if offs else 0): bad.append(f"p{p}: earliest {ans.get(('-2', p))}")
    if ans.get(("-1", p)) != end: bad.append(f"p{p}: latest {ans.get(('-1', p))} want {end}")
print("true" if not bad and len(ans) == 3 * parts else "false")
print(f"{len(ans)} answers for timestamp {T}, earliest, latest on {parts} partitions" + ("; " + ", ".join(bad) if bad else ": all as expected"))
PY
    emit "$(sed -n 1p "$TMP/res")" "$(sed -n 2p "$TMP/res")" ;;
  configs) na "AlterConfigs/DescribeConfigs command" ;;
  delete-records) na "DeleteRecords command" ;;
  delete-topic) na "DeleteTopics command" ;;
  *) emit false "unknown scenario $SCENARIO" "" true ;;
esac
exit 0
