package dev.sluice.compat;

import java.lang.reflect.Method;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java client program of the compatibility suite (kafka-clients, version chosen at build time).
 * java -jar sluice-compat-java-jar-with-dependencies.jar --bootstrap H:P --scenario S --topic T [--group G] [--ts-base MS]
 * Prints one JSON line: {"client","scenario","ok","detail","data"} (see compat/lib/scenario.ts).
 */
public final class Client {
    static final int RECORDS = 10_000;
    static final int PARTITIONS = 6;
    static final int PLACEMENT_KEYS = 1_000;
    static final int FIRST_CONSUMER_RECORDS = 4_000;
    static final String ALTER_NAME = "retention.ms";
    static final String ALTER_VALUE = "3600000";
    static final long DELETE_BEFORE = 100;

    static String bootstrap = "127.0.0.1:9092";
    static String topic = "compat";
    static String group;
    static Map<String, String> args = new HashMap<>();

    record Out(boolean ok, String detail, String dataJson) {}

    public static void main(String[] argv) {
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "error");
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        for (int i = 0; i < argv.length; i++) {
            if (argv[i].startsWith("--") && i + 1 < argv.length) args.put(argv[i].substring(2), argv[++i]);
        }
        bootstrap = args.getOrDefault("bootstrap", bootstrap);
        topic = args.getOrDefault("topic", topic);
        group = args.getOrDefault("group", topic + "-group");
        String scenario = args.getOrDefault("scenario", "metadata");
        String client = "java-" + kafkaVersion();
        Out out;
        try {
            out = switch (scenario) {
                case "metadata" -> metadata();
                case "create-topic" -> createTopic();
                case "produce" -> produce();
                case "consume-group" -> consumeGroup();
                case "describe-group" -> describeGroup();
                case "offsets-by-time" -> offsetsByTime();
                case "configs" -> configs();
                case "delete-records" -> deleteRecords();
                case "delete-topic" -> deleteTopic();
                case "errors" -> errors();
                case "fidelity" -> fidelity();
                default -> new Out(false, "unknown scenario " + scenario, null);
            };
        } catch (Throwable t) {
            Throwable c = (t instanceof ExecutionException && t.getCause() != null) ? t.getCause() : t;
            out = new Out(false, c.getClass().getSimpleName() + ": " + c.getMessage(), null);
        }
        StringBuilder sb = new StringBuilder();
        sb.append("{\"client\":").append(q(client)).append(",\"scenario\":").append(q(scenario))
          .append(",\"ok\":").append(out.ok).append(",\"detail\":").append(q(out.detail));
        if (out.dataJson != null) sb.append(",\"data\":").append(out.dataJson);
        sb.append("}");
        System.out.println(sb);
        System.out.flush();
        System.exit(0);
    }

    /** kafka-clients' version, from the properties file it ships (AppInfoParser moved between releases). */
    static String kafkaVersion() {
        try (var in = Client.class.getClassLoader().getResourceAsStream("kafka/kafka-version.properties")) {
            Properties p = new Properties();
            if (in != null) p.load(in);
            return p.getProperty("version", "unknown");
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
                    else b.append(ch);
                }
            }
        }
        return b.append('"').toString();
    }

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "15000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        return Admin.create(p);
    }

    static Out metadata() throws Exception {
        try (Admin a = admin()) {
            DescribeClusterResult c = a.describeCluster();
            Collection<Node> nodes = c.nodes().get(30, TimeUnit.SECONDS);
            String clusterId = c.clusterId().get();
            Node controller = c.controller().get();
            Set<String> topics = a.listTopics().names().get();
            boolean ok = !nodes.isEmpty() && clusterId != null && !clusterId.isEmpty();
            return new Out(ok, nodes.size() + " broker(s), cluster " + clusterId + ", controller " + (controller == null ? "none" : controller.id()) + ", " + topics.size() + " topic(s)", null);
        }
    }

    static Out createTopic() throws Exception {
        try (Admin a = admin()) {
            a.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all().get(30, TimeUnit.SECONDS);
            TopicDescription d = null;
            long deadline = System.currentTimeMillis() + 10_000;
            while (System.currentTimeMillis() < deadline) {
                try {
                    d = a.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
                    if (d.partitions().size() == PARTITIONS && d.partitions().stream().allMatch(p -> p.leader() != null)) break;
                } catch (ExecutionException e) {
                    // not yet propagated
                }
                Thread.sleep(200);
            }
            int n = d == null ? 0 : d.partitions().size();
            boolean leaders = d != null && d.partitions().stream().allMatch(p -> p.leader() != null);
            return new Out(n == PARTITIONS && leaders, n + " partitions, all with a leader: " + leaders + (d == null ? "" : ", topic id " + d.topicId()), null);
        }
    }

    static Out produce() throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, "true");
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, "5");
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "60000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        long tsBase = System.currentTimeMillis();
        int[] placement = new int[PLACEMENT_KEYS];
        int acked = 0;
        try (KafkaProducer<String, String> prod = new KafkaProducer<>(p)) {
            List<Future<RecordMetadata>> fs = new ArrayList<>(RECORDS);
            for (int i = 0; i < RECORDS; i++) {
                fs.add(prod.send(new ProducerRecord<>(topic, null, tsBase + i, "key-" + i, "value-" + i)));
            }
            prod.flush();
            for (int i = 0; i < RECORDS; i++) {
                RecordMetadata md = fs.get(i).get(60, TimeUnit.SECONDS);
                if (i < PLACEMENT_KEYS) placement[i] = md.partition();
                acked++;
            }
        }
        StringBuilder pl = new StringBuilder("[");
        for (int i = 0; i < PLACEMENT_KEYS; i++) pl.append(i == 0 ? "" : ",").append(placement[i]);
        pl.append("]");
        return new Out(acked == RECORDS, acked + " records acknowledged (idempotent, acks=all)",
            "{\"tsBase\":" + tsBase + ",\"acked\":" + acked + ",\"placement\":" + pl + "}");
    }

    static KafkaConsumer<String, String> consumer() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "500");
        p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "10000");
        p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "1000");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(p);
    }

    /** Consumes up to limit records (or until the union with `already` is complete, or idle), commits exactly what it read. */
    static List<String> consumeOnce(int limit, Set<String> already) {
        List<String> keys = new ArrayList<>();
        Map<TopicPartition, OffsetAndMetadata> next = new HashMap<>();
        Set<String> union = new HashSet<>(already);
        try (KafkaConsumer<String, String> c = consumer()) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 90_000;
            long lastData = System.currentTimeMillis() + 10_000;
            outer:
            while (System.currentTimeMillis() < deadline && System.currentTimeMillis() - lastData < 8_000) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    lastData = System.currentTimeMillis();
                    keys.add(r.key());
                    union.add(r.key());
                    next.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    if (keys.size() >= limit || union.size() >= RECORDS) break outer;
                }
            }
            c.commitSync(next, Duration.ofSeconds(30));
        }
        return keys;
    }

    static Out consumeGroup() {
        List<String> first = consumeOnce(FIRST_CONSUMER_RECORDS, Set.of());
        List<String> second = consumeOnce(RECORDS, new HashSet<>(first));
        Set<String> all = new HashSet<>(first);
        all.addAll(second);
        int dup = first.size() + second.size() - all.size();
        int lost = RECORDS - all.size();
        return new Out(lost == 0 && dup == 0 && first.size() == FIRST_CONSUMER_RECORDS,
            "first consumer " + first.size() + ", restarted consumer " + second.size() + ", lost " + lost + ", duplicates " + dup,
            "{\"first\":" + first.size() + ",\"second\":" + second.size() + ",\"lost\":" + lost + ",\"duplicates\":" + dup + "}");
    }

    static String groupState(ConsumerGroupDescription d) {
        for (String m : new String[] {"groupState", "state"}) {
            try {
                Method mm = d.getClass().getMethod(m);
                return String.valueOf(mm.invoke(d));
            } catch (ReflectiveOperationException e) {
                // try the other name (4.x: groupState(); 3.x: state())
            }
        }
        return "?";
    }

    static Map<TopicPartition, Long> ends(Admin a, OffsetSpec spec) throws Exception {
        Map<TopicPartition, OffsetSpec> req = new HashMap<>();
        for (int i = 0; i < PARTITIONS; i++) req.put(new TopicPartition(topic, i), spec);
        Map<TopicPartition, Long> out = new HashMap<>();
        for (Map.Entry<TopicPartition, ListOffsetsResult.ListOffsetsResultInfo> e : a.listOffsets(req).all().get(30, TimeUnit.SECONDS).entrySet()) {
            out.put(e.getKey(), e.getValue().offset());
        }
        return out;
    }

    static Out describeGroup() throws Exception {
        try (Admin a = admin()) {
            ConsumerGroupDescription d = a.describeConsumerGroups(List.of(group)).all().get(30, TimeUnit.SECONDS).get(group);
            Map<TopicPartition, OffsetAndMetadata> committed = a.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            Map<TopicPartition, Long> end = ends(a, OffsetSpec.latest());
            long sum = 0, lag = 0;
            for (Map.Entry<TopicPartition, Long> e : end.entrySet()) {
                OffsetAndMetadata o = committed.get(e.getKey());
                long off = o == null ? 0 : o.offset();
                sum += off;
                lag += e.getValue() - off;
            }
            String state = groupState(d);
            boolean ok = "Empty".equalsIgnoreCase(state) && sum == RECORDS && lag == 0 && d.members().isEmpty();
            return new Out(ok, "state " + state + ", " + d.members().size() + " member(s), coordinator " + (d.coordinator() == null ? "none" : d.coordinator().id())
                + ", committed " + sum + ", lag " + lag, null);
        }
    }

    static Out offsetsByTime() throws Exception {
        String tb = args.get("ts-base");
        if (tb == null) return new Out(false, "--ts-base missing (produce did not run)", null);
        long tsBase = Long.parseLong(tb);
        int mid = RECORDS / 2;
        try (Admin a = admin()) {
            Map<TopicPartition, Long> byTime = ends(a, OffsetSpec.forTimestamp(tsBase + mid));
            Map<TopicPartition, Long> latest = ends(a, OffsetSpec.latest());
            Map<TopicPartition, Long> earliest = ends(a, OffsetSpec.earliest());
            Map<TopicPartition, Long> beyond = ends(a, OffsetSpec.forTimestamp(tsBase + 10L * RECORDS));
            long atOrAfter = 0, lsum = 0, esum = 0;
            int beyondNone = 0;
            for (TopicPartition tp : latest.keySet()) {
                long o = byTime.get(tp);
                atOrAfter += latest.get(tp) - (o < 0 ? latest.get(tp) : o);
                lsum += latest.get(tp);
                esum += earliest.get(tp);
                if (beyond.get(tp) == -1L) beyondNone++;
            }
            boolean ok = atOrAfter == RECORDS - mid && lsum == RECORDS && esum == 0 && beyondNone == PARTITIONS;
            return new Out(ok, "records at or after ts(record " + mid + "): " + atOrAfter + " (want " + (RECORDS - mid) + "); earliest sum " + esum
                + ", latest sum " + lsum + ", partitions with no record after the last timestamp: " + beyondNone + "/" + PARTITIONS, null);
        }
    }

    static Out configs() throws Exception {
        try (Admin a = admin()) {
            ConfigResource r = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            a.incrementalAlterConfigs(Map.of(r, List.of(new AlterConfigOp(new ConfigEntry(ALTER_NAME, ALTER_VALUE), AlterConfigOp.OpType.SET))))
                .all().get(30, TimeUnit.SECONDS);
            Config c = a.describeConfigs(List.of(r)).all().get(30, TimeUnit.SECONDS).get(r);
            ConfigEntry set = c.get(ALTER_NAME);
            ConfigEntry seg = c.get("segment.bytes");
            boolean ok = set != null && ALTER_VALUE.equals(set.value()) && set.source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG
                && seg != null && seg.isDefault();
            StringBuilder names = new StringBuilder("[");
            c.entries().stream().map(ConfigEntry::name).sorted().forEach(n -> names.append(names.length() > 1 ? "," : "").append(q(n)));
            names.append("]");
            return new Out(ok, c.entries().size() + " entries; " + ALTER_NAME + "=" + (set == null ? null : set.value() + " (" + set.source() + ")")
                + "; segment.bytes=" + (seg == null ? null : seg.value() + " (" + seg.source() + ")"), "{\"names\":" + names + "}");
        }
    }

    static Out deleteRecords() throws Exception {
        try (Admin a = admin()) {
            TopicPartition tp = new TopicPartition(topic, 0);
            long low = a.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(DELETE_BEFORE))).lowWatermarks().get(tp).get(30, TimeUnit.SECONDS).lowWatermark();
            long earliest = ends(a, OffsetSpec.earliest()).get(tp);
            return new Out(low == DELETE_BEFORE && earliest == DELETE_BEFORE, "low watermark " + low + ", earliest offset " + earliest + " (want " + DELETE_BEFORE + ")", null);
        }
    }

    record Sent(String codec, byte[] key, byte[] value, List<org.apache.kafka.common.header.Header> headers, long ts) {}

    static String show(byte[] b) {
        if (b == null) return "null";
        if (b.length > 40) return b.length + " bytes";
        return "\"" + new String(b, java.nio.charset.StandardCharsets.UTF_8) + "\"";
    }

    static String showHeaders(Iterable<org.apache.kafka.common.header.Header> hs) {
        StringBuilder b = new StringBuilder("[");
        for (org.apache.kafka.common.header.Header h : hs) b.append(b.length() > 1 ? "," : "").append(h.key()).append("=").append(show(h.value()));
        return b.append("]").toString();
    }

    /**
     * Record fidelity: for each compression codec, records with repeated/empty/null headers, a null
     * key, a null value (tombstone), empty key and value, a 900 kB value and an old timestamp are
     * produced to a 1-partition topic and read back (assign, no group): every field must round-trip.
     */
    static Out fidelity() throws Exception {
        String t = topic + "-fidelity";
        try (Admin a = admin()) {
            a.createTopics(List.of(new NewTopic(t, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        java.util.Random rnd = new java.util.Random(42);
        byte[] big = new byte[900_000];
        rnd.nextBytes(big);
        long old = System.currentTimeMillis() - 86_400_000L;
        List<Sent> sent = new ArrayList<>();
        String[] codecs = {"none", "gzip", "snappy", "lz4", "zstd"};
        for (String codec : codecs) {
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ProducerConfig.ACKS_CONFIG, "all");
            p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
            p.put(ProducerConfig.LINGER_MS_CONFIG, "20");
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, org.apache.kafka.common.serialization.ByteArraySerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, org.apache.kafka.common.serialization.ByteArraySerializer.class.getName());
            List<Sent> batch = new ArrayList<>();
            java.nio.charset.Charset u = java.nio.charset.StandardCharsets.UTF_8;
            List<org.apache.kafka.common.header.Header> hs = List.of(
                new org.apache.kafka.common.header.internals.RecordHeader("h", "1".getBytes(u)),
                new org.apache.kafka.common.header.internals.RecordHeader("h", "2".getBytes(u)),
                new org.apache.kafka.common.header.internals.RecordHeader("empty", new byte[0]),
                new org.apache.kafka.common.header.internals.RecordHeader("null", (byte[]) null));
            long now = System.currentTimeMillis();
            batch.add(new Sent(codec, ("k-" + codec).getBytes(u), "v".getBytes(u), hs, now));
            batch.add(new Sent(codec, null, ("no-key-" + codec).getBytes(u), List.of(), now));
            batch.add(new Sent(codec, ("tomb-" + codec).getBytes(u), null, List.of(), now));
            batch.add(new Sent(codec, new byte[0], new byte[0], List.of(), now));
            batch.add(new Sent(codec, ("big-" + codec).getBytes(u), big, List.of(), now));
            batch.add(new Sent(codec, ("old-" + codec).getBytes(u), "old".getBytes(u), List.of(), old));
            try (KafkaProducer<byte[], byte[]> prod = new KafkaProducer<>(p)) {
                List<Future<RecordMetadata>> fs = new ArrayList<>();
                for (Sent r : batch) fs.add(prod.send(new ProducerRecord<>(t, 0, r.ts(), r.key(), r.value(), r.headers())));
                prod.flush();
                for (Future<RecordMetadata> f : fs) f.get(30, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                return new Out(false, "produce with compression " + codec + ": " + e.getCause(), null);
            }
            sent.addAll(batch);
        }
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, org.apache.kafka.common.serialization.ByteArrayDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, org.apache.kafka.common.serialization.ByteArrayDeserializer.class.getName());
        List<ConsumerRecord<byte[], byte[]>> got = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> cons = new KafkaConsumer<>(c)) {
            TopicPartition tp = new TopicPartition(t, 0);
            cons.assign(List.of(tp));
            cons.seekToBeginning(List.of(tp));
            long deadline = System.currentTimeMillis() + 30_000;
            while (got.size() < sent.size() && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> r : cons.poll(Duration.ofMillis(500))) got.add(r);
            }
        }
        List<String> bad = new ArrayList<>();
        for (int i = 0; i < sent.size(); i++) {
            Sent w = sent.get(i);
            String what = w.codec() + " #" + (i % 6);
            if (i >= got.size()) {
                bad.add(what + ": missing");
                continue;
            }
            ConsumerRecord<byte[], byte[]> r = got.get(i);
            if (r.offset() != i) bad.add(what + ": offset " + r.offset());
            if (!java.util.Arrays.equals(w.key(), r.key())) bad.add(what + ": key " + show(r.key()) + " (sent " + show(w.key()) + ")");
            if (!java.util.Arrays.equals(w.value(), r.value())) bad.add(what + ": value " + show(r.value()) + " (sent " + show(w.value()) + ")");
            if (!showHeaders(w.headers()).equals(showHeaders(r.headers()))) bad.add(what + ": headers " + showHeaders(r.headers()) + " (sent " + showHeaders(w.headers()) + ")");
            if (r.timestamp() != w.ts()) bad.add(what + ": timestamp " + r.timestamp() + " (sent " + w.ts() + ")");
            if (r.timestampType() != org.apache.kafka.common.record.TimestampType.CREATE_TIME) bad.add(what + ": timestamp type " + r.timestampType());
        }
        try (Admin a = admin()) {
            a.deleteTopics(List.of(t)).all().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            // cleanup only
        }
        return new Out(bad.isEmpty(), bad.isEmpty() ? sent.size() + " records (5 codecs: headers, null key, tombstone, empty, 900 kB, old timestamp) read back identical"
            : bad.size() + " mismatch(es): " + String.join("; ", bad.subList(0, Math.min(6, bad.size()))), null);
    }

    /** What one admin call failed with: the exception's simple name, or "ok". */
    static String outcome(org.apache.kafka.common.KafkaFuture<?> f) {
        try {
            f.get(30, TimeUnit.SECONDS);
            return "ok";
        } catch (ExecutionException e) {
            return e.getCause() == null ? "ExecutionException" : e.getCause().getClass().getSimpleName();
        } catch (Exception e) {
            return e.getClass().getSimpleName();
        }
    }

    /** Error paths: each admin call must fail with the exception Kafka's own broker causes. */
    static Out errors() throws Exception {
        try (Admin a = admin()) {
            String missing = topic + "-missing";
            Map<String, String> want = new java.util.LinkedHashMap<>();
            Map<String, String> got = new java.util.LinkedHashMap<>();
            want.put("create existing topic", "TopicExistsException");
            got.put("create existing topic", outcome(a.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1))).all()));
            want.put("create with retention.ms=abc", "InvalidConfigurationException");
            got.put("create with retention.ms=abc", outcome(a.createTopics(List.of(new NewTopic(missing + "-bad", 1, (short) 1).configs(Map.of("retention.ms", "abc")))).all()));
            want.put("create with replication factor 3 on one broker", "InvalidReplicationFactorException");
            got.put("create with replication factor 3 on one broker", outcome(a.createTopics(List.of(new NewTopic(missing + "-rf", 1, (short) 3))).all()));
            want.put("describe configs of a missing topic", "UnknownTopicOrPartitionException");
            got.put("describe configs of a missing topic", outcome(a.describeConfigs(List.of(new ConfigResource(ConfigResource.Type.TOPIC, missing))).all()));
            want.put("set an unknown topic config", "InvalidConfigurationException");
            got.put("set an unknown topic config", outcome(a.incrementalAlterConfigs(Map.of(new ConfigResource(ConfigResource.Type.TOPIC, topic),
                List.of(new AlterConfigOp(new ConfigEntry("no.such.config", "1"), AlterConfigOp.OpType.SET)))).all()));
            want.put("decrease the partition count", "InvalidPartitionsException");
            got.put("decrease the partition count", outcome(a.createPartitions(Map.of(topic, org.apache.kafka.clients.admin.NewPartitions.increaseTo(2))).all()));
            want.put("delete records past the end", "OffsetOutOfRangeException");
            got.put("delete records past the end", outcome(a.deleteRecords(Map.of(new TopicPartition(topic, 0), RecordsToDelete.beforeOffset(1_000_000))).all()));
            // the admin client waits (timeoutMs) for the partition to appear in metadata, on Kafka too
            want.put("list offsets of a missing partition", "TimeoutException");
            Map<TopicPartition, OffsetSpec> bad = Map.of(new TopicPartition(topic, 99), OffsetSpec.latest());
            got.put("list offsets of a missing partition", outcome(a.listOffsets(bad, new org.apache.kafka.clients.admin.ListOffsetsOptions().timeoutMs(5000)).all()));
            want.put("delete a missing topic", "UnknownTopicOrPartitionException");
            got.put("delete a missing topic", outcome(a.deleteTopics(List.of(missing)).all()));
            List<String> bads = new ArrayList<>();
            StringBuilder data = new StringBuilder("{");
            for (String k : want.keySet()) {
                if (!want.get(k).equals(got.get(k))) bads.add(k + ": " + got.get(k) + " (want " + want.get(k) + ")");
                data.append(data.length() > 1 ? "," : "").append(q(k)).append(":").append(q(got.get(k)));
            }
            data.append("}");
            return new Out(bads.isEmpty(), bads.isEmpty() ? want.size() + " error paths answered as Kafka does" : String.join("; ", bads), data.toString());
        }
    }

    static Out deleteTopic() throws Exception {
        try (Admin a = admin()) {
            a.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
            long deadline = System.currentTimeMillis() + 10_000;
            boolean listed = true;
            while (System.currentTimeMillis() < deadline) {
                listed = a.listTopics().names().get().contains(topic);
                if (!listed) break;
                Thread.sleep(250);
            }
            return new Out(!listed, listed ? "topic still listed 10 s after DeleteTopics" : "deleted; no longer listed", null);
        }
    }
}
