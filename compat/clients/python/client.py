"""The confluent-kafka-python (librdkafka) client program of the compatibility suite.

    python client.py --bootstrap 127.0.0.1:9092 --scenario produce --topic T [--group G] [--ts-base MS]

Prints one JSON line (see compat/lib/scenario.ts). Keyed records use partitioner=murmur2_random,
the Java client's placement (librdkafka's default, consistent_random, hashes with CRC32).
"""

import argparse
import json
import sys
import threading
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)

try:
    from confluent_kafka import ConsumerGroupTopicPartitions
except ImportError:  # older layouts
    from confluent_kafka.admin import ConsumerGroupTopicPartitions

RECORDS, PARTITIONS, PLACEMENT_KEYS, FIRST = 10_000, 6, 1_000, 4_000
ALTER_NAME, ALTER_VALUE, DELETE_BEFORE = "retention.ms", "3600000", 100

p = argparse.ArgumentParser()
p.add_argument("--bootstrap", default="127.0.0.1:9092")
p.add_argument("--scenario", default="metadata")
p.add_argument("--topic", default="compat")
p.add_argument("--group", default=None)
p.add_argument("--ts-base", type=int, default=None)
args = p.parse_args()
group = args.group or f"{args.topic}-group"
topic = args.topic
COMMON = {"bootstrap.servers": args.bootstrap, "client.id": "sluice-compat-python", "socket.timeout.ms": 15000}


def admin():
    return AdminClient(dict(COMMON))


def metadata():
    a = admin()
    md = a.list_topics(timeout=30)
    c = a.describe_cluster(request_timeout=30).result()
    ok = len(md.brokers) >= 1 and bool(md.cluster_id)
    return ok, f"{len(md.brokers)} broker(s), cluster {md.cluster_id}, controller {md.controller_id}, {len(md.topics)} topic(s); DescribeCluster: {len(c.nodes)} node(s)", None


def create_topic():
    a = admin()
    a.create_topics([NewTopic(topic, PARTITIONS, 1)], request_timeout=30)[topic].result()
    deadline = time.time() + 10
    n, leaders = 0, False
    while time.time() < deadline:
        t = a.list_topics(topic, timeout=10).topics.get(topic)
        if t is not None and t.error is None:
            n = len(t.partitions)
            leaders = n > 0 and all(pm.leader >= 0 for pm in t.partitions.values())
            if n == PARTITIONS and leaders:
                break
        time.sleep(0.2)
    return n == PARTITIONS and leaders, f"{n} partitions, all with a leader: {leaders}", None


def produce():
    prod = Producer({**COMMON, "enable.idempotence": True, "acks": "all", "partitioner": "murmur2_random", "linger.ms": 5, "message.timeout.ms": 60000})
    ts_base = int(time.time() * 1000)
    placement = [-1] * PLACEMENT_KEYS
    state = {"acked": 0, "err": None}

    def cb_for(i):
        def cb(err, msg):
            if err is not None:
                state["err"] = state["err"] or str(err)
                return
            state["acked"] += 1
            if i < PLACEMENT_KEYS:
                placement[i] = msg.partition()
        return cb

    for i in range(RECORDS):
        while True:
            try:
                prod.produce(topic, key=f"key-{i}", value=f"value-{i}", timestamp=ts_base + i, on_delivery=cb_for(i))
                break
            except BufferError:
                prod.poll(0.1)
        prod.poll(0)
    prod.flush(60)
    detail = f"{state['acked']} records acknowledged (idempotent, acks=all)" + (f"; first error: {state['err']}" if state["err"] else "")
    return state["acked"] == RECORDS, detail, {"tsBase": ts_base, "acked": state["acked"], "placement": placement}


def consume_once(limit, already):
    c = Consumer({**COMMON, "group.id": group, "enable.auto.commit": False, "auto.offset.reset": "earliest", "session.timeout.ms": 10000, "heartbeat.interval.ms": 1000})
    keys, nxt, union = [], {}, set(already)
    try:
        c.subscribe([topic])
        deadline, last = time.time() + 90, time.time() + 10
        while time.time() < deadline and time.time() - last < 8:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == confluent_kafka.KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(m.error())
            last = time.time()
            k = m.key().decode()
            keys.append(k)
            union.add(k)
            nxt[m.partition()] = m.offset() + 1
            if len(keys) >= limit or len(union) >= RECORDS:
                break
        if nxt:
            c.commit(offsets=[TopicPartition(topic, part, off) for part, off in nxt.items()], asynchronous=False)
    finally:
        c.close()
    return keys


def consume_group():
    first = consume_once(FIRST, set())
    second = consume_once(RECORDS, set(first))
    allk = set(first) | set(second)
    dup = len(first) + len(second) - len(allk)
    lost = RECORDS - len(allk)
    return lost == 0 and dup == 0 and len(first) == FIRST, f"first consumer {len(first)}, restarted consumer {len(second)}, lost {lost}, duplicates {dup}", {"first": len(first), "second": len(second), "lost": lost, "duplicates": dup}


def list_offsets(a, spec):
    req = {TopicPartition(topic, i): spec for i in range(PARTITIONS)}
    res = a.list_offsets(req, request_timeout=30)
    return {tp.partition: f.result().offset for tp, f in res.items()}


def describe_group():
    a = admin()
    d = a.describe_consumer_groups([group], request_timeout=30)[group].result()
    offs = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=30)[group].result()
    end = list_offsets(a, OffsetSpec.latest())
    committed = {tp.partition: tp.offset for tp in offs.topic_partitions if tp.topic == topic}
    csum = sum(max(o, 0) for o in committed.values())
    lag = sum(end[pp] - max(committed.get(pp, 0), 0) for pp in end)
    state = getattr(d.state, "name", str(d.state))
    ok = state.upper() == "EMPTY" and csum == RECORDS and lag == 0 and len(d.members) == 0
    return ok, f"state {state}, {len(d.members)} member(s), coordinator {d.coordinator.id if d.coordinator else None}, committed {csum}, lag {lag}", None


def offsets_by_time():
    if args.ts_base is None:
        return False, "--ts-base missing (produce did not run)", None
    a = admin()
    mid = RECORDS // 2
    bt = list_offsets(a, OffsetSpec.for_timestamp(args.ts_base + mid))
    end = list_offsets(a, OffsetSpec.latest())
    start = list_offsets(a, OffsetSpec.earliest())
    after = sum(end[pp] - (bt[pp] if bt[pp] >= 0 else end[pp]) for pp in end)
    ok = after == RECORDS - mid and sum(start.values()) == 0 and sum(end.values()) == RECORDS
    return ok, f"records at or after ts(record {mid}): {after} (want {RECORDS - mid}); earliest sum {sum(start.values())}, latest sum {sum(end.values())}", None


def configs():
    a = admin()
    r = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[ConfigEntry(ALTER_NAME, ALTER_VALUE, incremental_operation=AlterConfigOpType.SET)])
    for f in a.incremental_alter_configs([r]).values():
        f.result()
    d = list(a.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values())[0].result()
    s, seg = d.get(ALTER_NAME), d.get("segment.bytes")
    ok = s is not None and s.value == ALTER_VALUE and s.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value and seg is not None and seg.is_default
    src = lambda e: ConfigSource(e.source).name if e is not None else None  # noqa: E731
    return ok, f"{len(d)} entries; {ALTER_NAME}={s.value if s else None} ({src(s)}); segment.bytes={seg.value if seg else None} ({src(seg)})", None


def delete_records():
    a = admin()
    res = a.delete_records([TopicPartition(topic, 0, DELETE_BEFORE)], request_timeout=30)
    low = list(res.values())[0].result().low_watermark
    earliest = list_offsets(a, OffsetSpec.earliest())[0]
    return low == DELETE_BEFORE and earliest == DELETE_BEFORE, f"low watermark {low}, earliest offset {earliest} (want {DELETE_BEFORE})", None


def delete_topic():
    a = admin()
    a.delete_topics([topic], request_timeout=30)[topic].result()
    deadline = time.time() + 10
    while time.time() < deadline:
        if topic not in a.list_topics(timeout=10).topics:
            return True, "deleted; no longer listed", None
        time.sleep(0.25)
    return False, "topic still listed 10 s after DeleteTopics", None


SCENARIOS = {
    "metadata": metadata, "create-topic": create_topic, "produce": produce, "consume-group": consume_group,
    "describe-group": describe_group, "offsets-by-time": offsets_by_time, "configs": configs,
    "delete-records": delete_records, "delete-topic": delete_topic,
}


def main():
    v = confluent_kafka.version()
    out = {"client": f"confluent-kafka-python-{v[0] if isinstance(v, tuple) else v}", "scenario": args.scenario}
    fn = SCENARIOS.get(args.scenario)
    if fn is None:
        out.update(ok=False, na=True, detail=f"unknown scenario {args.scenario}")
    else:
        result = {}

        def target():
            try:
                result["r"] = fn()
            except Exception as e:  # noqa: BLE001
                result["r"] = (False, f"{type(e).__name__}: {e}", None)

        t = threading.Thread(target=target, daemon=True)
        t.start()
        t.join(240)
        ok, detail, data = result.get("r", (False, f"{args.scenario}: timed out after 240 s", None))
        out.update(ok=ok, detail=detail)
        if data is not None:
            out["data"] = data
    print(json.dumps(out), flush=True)
    sys.stdout.flush()


main()
import os  # noqa: E402

os._exit(0)
