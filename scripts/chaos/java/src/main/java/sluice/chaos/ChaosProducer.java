package sluice.chaos;

import java.io.BufferedOutputStream;
import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.AuthorizationException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.OutOfOrderSequenceException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The chaos harness's Java producer (scripts/chaos/java-producer.ts runs it): sends unique values
 * NAME-SEQ, one record per send, to partition SEQ % PARTITIONS with acks=all, and prints one JSON
 * line per event on stdout (stderr carries the client's log at the chosen level).
 *
 * Usage: ChaosProducer BOOTSTRAP TOPIC PARTITIONS NAME IDEMPOTENT(true|false) [key=value ...]
 *   max-outstanding=100   sends handed to send() whose callback has not fired (blocks beyond)
 *   rate=0                sends per second (0: as fast as max-outstanding allows)
 *   max-in-flight=5       max.in.flight.requests.per.connection
 *   first-seq=0           the first SEQ (a restarted process continues where the last one stopped)
 *   delivery-timeout-ms=30000, request-timeout-ms=5000, flush-timeout-ms=30000, close-timeout-ms=5000
 *   log=error             the client's log level (slf4j-simple, on stderr)
 *   inject-fatal-after=-1 for tests: after this many sends, put the first producer in its fatal
 *                         state (ProducerFencedException) to exercise the re-initialisation
 *
 * Lines (times are epoch milliseconds):
 *   {"ready":true,...}                                 once, when the first producer is made
 *   {"sent":V,"seq":N,"partition":P,"startMs":T}        just before send(V) is called (flushed first)
 *   {"value":V,"seq":N,"partition":P,"outcome":"ok","offset":O,"startMs":T,"endMs":T}
 *   {"value":V,...,"outcome":"failed","error":E,"errorClass":C,"sync":B,"startMs":T,"endMs":T}
 *       the callback fired with an exception; sync: it fired inside send() on the sending thread,
 *       so the record was never sent (it never reached the accumulator, or the producer was in
 *       its fatal state, where batches are aborted unsent)
 *   the same with "again":true when a send's callback fires a second time: kafka-clients 4.4.0
 *       does that for a send() made in the fatal state (once inside send(), once when the sender
 *       aborts the batch); the counters count the first only
 *   {"reinit":true,"error":E}                          the producer was closed and a new one made
 *   {"done":true,...}                                  last line, after flush and close
 * A value with a "sent" line and no outcome line had no callback before the process ended.
 *
 * Stops on a line "stop" on stdin or when stdin closes: no more sends, flush() (at most
 * flush-timeout-ms), close(close-timeout-ms), the done line, exit 0.
 */
public final class ChaosProducer {
    private static PrintStream out;

    private static String bootstrap;
    private static String topic;
    private static int partitions;
    private static String name;
    private static boolean idempotent;
    private static final Map<String, String> opts = new HashMap<>();

    private static volatile boolean stopping = false;
    /** Set by a callback that saw an error, so the sending thread checks the producer's state. */
    private static volatile boolean errorSeen = false;
    /** Set by a callback that saw an error the producer cannot recover from. */
    private static volatile String fatalReason = null;

    private static Semaphore permits;
    private static final AtomicLong acked = new AtomicLong();
    private static final AtomicLong failed = new AtomicLong();
    private static final ConcurrentHashMap<Long, Pending> pending = new ConcurrentHashMap<>();
    private static int generation = 0;
    private static Thread sendingThread;

    private static final class Pending {
        final long seq;
        final String value;
        final int partition;
        final long startMs;
        final int generation;
        final AtomicBoolean released = new AtomicBoolean(false);
        final AtomicBoolean completed = new AtomicBoolean(false);
        volatile boolean inSend = true;

        Pending(long seq, String value, int partition, long startMs, int generation) {
            this.seq = seq;
            this.value = value;
            this.partition = partition;
            this.startMs = startMs;
            this.generation = generation;
        }

        void release() {
            if (released.compareAndSet(false, true)) {
                pending.remove(seq);
                permits.release();
            }
        }
    }

    public static void main(String[] argv) throws Exception {
        out = new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false,
                StandardCharsets.UTF_8);
        System.setOut(System.err); // stdout is the JSON protocol only
        if (argv.length < 5) {
            System.err.println("usage: ChaosProducer BOOTSTRAP TOPIC PARTITIONS NAME IDEMPOTENT [key=value ...]");
            System.exit(2);
        }
        bootstrap = argv[0];
        topic = argv[1];
        partitions = Integer.parseInt(argv[2]);
        name = argv[3];
        idempotent = Boolean.parseBoolean(argv[4]);
        for (int i = 5; i < argv.length; i++) {
            int eq = argv[i].indexOf('=');
            if (eq <= 0) throw new IllegalArgumentException("option not key=value: " + argv[i]);
            opts.put(argv[i].substring(0, eq), argv[i].substring(eq + 1));
        }
        System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", opt("log", "error"));
        System.setProperty("org.slf4j.simpleLogger.logFile", "System.err");
        System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");

        int maxOutstanding = Integer.parseInt(opt("max-outstanding", "100"));
        double rate = Double.parseDouble(opt("rate", "0"));
        long seq = Long.parseLong(opt("first-seq", "0"));
        long flushTimeoutMs = Long.parseLong(opt("flush-timeout-ms", "30000"));
        long closeTimeoutMs = Long.parseLong(opt("close-timeout-ms", "5000"));
        long injectFatalAfter = Long.parseLong(opt("inject-fatal-after", "-1"));
        long sends = 0;
        permits = new Semaphore(maxOutstanding);
        sendingThread = Thread.currentThread();

        Thread stdin = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    if (line.trim().equals("stop")) break;
                }
            } catch (Exception e) {
                // stdin broken: treat as closed
            }
            stopping = true;
        }, "stdin");
        stdin.setDaemon(true);
        stdin.start();

        KafkaProducer<String, String> producer = newProducer();
        emit("{\"ready\":true,\"name\":" + json(name) + ",\"idempotent\":" + idempotent + ",\"clientVersion\":"
                + json(clientVersion()) + ",\"maxOutstanding\":"
                + maxOutstanding + ",\"rate\":" + rate + "}");

        long intervalNs = rate > 0 ? (long) (1e9 / rate) : 0;
        long nextNs = System.nanoTime();
        while (!stopping) {
            if (errorSeen) {
                errorSeen = false;
                String why = fatalReason != null ? fatalReason : fatalState(producer);
                fatalReason = null;
                if (why != null) producer = reinit(producer, why, closeTimeoutMs);
            }
            if (intervalNs > 0) {
                long now = System.nanoTime();
                if (now < nextNs) {
                    LockSupport.parkNanos(Math.min(nextNs - now, 100_000_000L));
                    continue;
                }
                nextNs = Math.max(nextNs + intervalNs, now - intervalNs);
            }
            if (!permits.tryAcquire(100, TimeUnit.MILLISECONDS)) continue;
            int partition = (int) (seq % partitions);
            String value = name + "-" + seq;
            Pending p = new Pending(seq, value, partition, System.currentTimeMillis(), generation);
            pending.put(seq, p);
            seq++;
            emit("{\"sent\":" + json(value) + ",\"seq\":" + p.seq + ",\"partition\":" + partition + ",\"startMs\":"
                    + p.startMs + "}");
            try {
                producer.send(new ProducerRecord<>(topic, partition, null, value), (md, e) -> complete(p, md, e));
            } catch (RuntimeException e) {
                // send() threw: no callback will fire (closed or fatally failed producer, interrupted)
                p.inSend = false;
                boolean again = !p.completed.compareAndSet(false, true);
                if (!again) failed.incrementAndGet();
                emitOutcome(p, null, e, true, again);
                p.release();
                producer = reinit(producer, describe(e), closeTimeoutMs);
                continue;
            }
            p.inSend = false;
            if (++sends == injectFatalAfter && generation == 0) injectFatal(producer);
        }

        // Stop: let what was sent settle, then close.
        final KafkaProducer<String, String> last = producer;
        Thread flusher = new Thread(() -> {
            try {
                last.flush();
            } catch (Exception e) {
                // reported by the callbacks
            }
        }, "flush");
        flusher.setDaemon(true);
        long flushStart = System.currentTimeMillis();
        flusher.start();
        flusher.join(flushTimeoutMs);
        long flushMs = System.currentTimeMillis() - flushStart;
        boolean flushed = !flusher.isAlive();
        try {
            producer.close(Duration.ofMillis(closeTimeoutMs));
        } catch (Exception e) {
            System.err.println("close: " + describe(e));
        }
        emit("{\"done\":true,\"nextSeq\":" + seq + ",\"acked\":" + acked.get() + ",\"failed\":" + failed.get()
                + ",\"outstanding\":" + pending.size() + ",\"flushed\":" + flushed + ",\"flushMs\":" + flushMs + "}");
        out.flush();
        System.exit(0);
    }

    /** kafka-clients' version, from the properties file in its jar. */
    private static String clientVersion() {
        try (var in = ChaosProducer.class.getClassLoader().getResourceAsStream("kafka/kafka-version.properties")) {
            Properties p = new Properties();
            if (in != null) p.load(in);
            return p.getProperty("version", "unknown");
        } catch (java.io.IOException e) {
            return "unknown";
        }
    }

    private static String opt(String key, String dflt) {
        return opts.getOrDefault(key, dflt);
    }

    private static KafkaProducer<String, String> newProducer() {
        Properties props = new Properties();
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(ProducerConfig.CLIENT_ID_CONFIG, "chaos-java-" + name + "-" + generation);
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        props.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, Boolean.toString(idempotent));
        props.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, opt("max-in-flight", "5"));
        props.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, opt("delivery-timeout-ms", "30000"));
        props.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, opt("request-timeout-ms", "5000"));
        // send() blocks at most this long for metadata or buffer space (then its callback fails).
        props.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, opt("max-block-ms", "10000"));
        props.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        props.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return new KafkaProducer<>(props);
    }

    /**
     * Closes the producer (its pending sends complete with errors: their callbacks print them) and
     * makes a new one (a new producer id). Sends of the old producer whose callback still has not
     * fired give back their permits; their values stay without an outcome line.
     */
    private static KafkaProducer<String, String> reinit(KafkaProducer<String, String> old, String why,
            long closeTimeoutMs) {
        emit("{\"reinit\":true,\"error\":" + json(why) + "}");
        int oldGeneration = generation;
        try {
            old.close(Duration.ofMillis(closeTimeoutMs));
        } catch (Exception e) {
            System.err.println("close: " + describe(e));
        }
        for (Pending p : pending.values()) {
            if (p.generation == oldGeneration) p.release();
        }
        generation++;
        errorSeen = false;
        fatalReason = null;
        return newProducer();
    }

    private static void complete(Pending p, RecordMetadata md, Exception e) {
        boolean sync = p.inSend && Thread.currentThread() == sendingThread;
        boolean again = !p.completed.compareAndSet(false, true);
        if (e != null) {
            if (isFatal(e)) fatalReason = describe(e);
            errorSeen = true;
        }
        if (!again) {
            if (e == null) acked.incrementAndGet();
            else failed.incrementAndGet();
        }
        emitOutcome(p, md, e, sync, again);
        p.release();
    }

    private static void emitOutcome(Pending p, RecordMetadata md, Throwable e, boolean sync, boolean again) {
        StringBuilder b = new StringBuilder(200);
        b.append("{\"value\":").append(json(p.value)).append(",\"seq\":").append(p.seq).append(",\"partition\":")
                .append(p.partition);
        if (e == null) {
            b.append(",\"outcome\":\"ok\",\"offset\":").append(md.offset());
            if (md.partition() != p.partition) b.append(",\"ackPartition\":").append(md.partition());
        } else {
            b.append(",\"outcome\":\"failed\",\"error\":").append(json(describe(e))).append(",\"errorClass\":")
                    .append(json(e.getClass().getName())).append(",\"sync\":").append(sync);
        }
        if (again) b.append(",\"again\":true");
        b.append(",\"startMs\":").append(p.startMs).append(",\"endMs\":").append(System.currentTimeMillis())
                .append('}');
        emit(b.toString());
    }

    /** Errors after which this producer cannot send again (KafkaProducer's fatal errors). */
    private static boolean isFatal(Throwable e) {
        return e instanceof ProducerFencedException || e instanceof InvalidProducerEpochException
                || e instanceof OutOfOrderSequenceException || e instanceof UnsupportedVersionException
                || e instanceof AuthorizationException || e instanceof AuthenticationException
                || e instanceof IllegalStateException;
    }

    private static Method hasFatalError;
    private static Method lastError;
    private static Field transactionManager;
    private static boolean reflectionFailed = false;

    /**
     * Whether the producer's transaction manager (which runs the idempotent producer's state) is
     * in its fatal state, read reflectively (package-private; classpath code may open it). null
     * when it is not (or when reflection fails: then only isFatal's classes count).
     */
    private static String fatalState(KafkaProducer<String, String> producer) {
        if (reflectionFailed || !idempotent) return null;
        try {
            if (transactionManager == null) {
                transactionManager = KafkaProducer.class.getDeclaredField("transactionManager");
                transactionManager.setAccessible(true);
                Class<?> tm = transactionManager.getType();
                hasFatalError = tm.getDeclaredMethod("hasFatalError");
                hasFatalError.setAccessible(true);
                lastError = tm.getDeclaredMethod("lastError");
                lastError.setAccessible(true);
            }
            Object tm = transactionManager.get(producer);
            if (tm == null || !(Boolean) hasFatalError.invoke(tm)) return null;
            Object err = lastError.invoke(tm);
            return "fatal state: " + (err instanceof Throwable ? describe((Throwable) err) : String.valueOf(err));
        } catch (Exception ex) {
            reflectionFailed = true;
            System.err.println("cannot read the producer's state reflectively: " + describe(ex));
            return null;
        }
    }

    /** For tests (inject-fatal-after): the transition the client makes on ProducerFencedException. */
    private static void injectFatal(KafkaProducer<String, String> producer) {
        try {
            Field f = KafkaProducer.class.getDeclaredField("transactionManager");
            f.setAccessible(true);
            Object tm = f.get(producer);
            Method m = f.getType().getDeclaredMethod("transitionToFatalError", RuntimeException.class);
            m.setAccessible(true);
            m.invoke(tm, new ProducerFencedException("injected by inject-fatal-after"));
            System.err.println("inject-fatal-after: the producer is now in its fatal state");
        } catch (Exception ex) {
            System.err.println("inject-fatal-after failed: " + describe(ex));
        }
    }

    private static String describe(Throwable e) {
        StringBuilder b = new StringBuilder();
        Throwable t = e;
        for (int depth = 0; t != null && depth < 4; depth++, t = t.getCause()) {
            if (depth > 0) b.append(" <- ");
            b.append(t.getClass().getSimpleName());
            if (t.getMessage() != null) b.append(": ").append(t.getMessage());
            if (t.getCause() == t) break;
        }
        return b.toString();
    }

    private static synchronized void emit(String line) {
        out.print(line);
        out.print('\n');
        out.flush();
    }

    private static String json(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder(s.length() + 2).append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> b.append("\\\"");
                case '\\' -> b.append("\\\\");
                case '\n' -> b.append("\\n");
                case '\r' -> b.append("\\r");
                case '\t' -> b.append("\\t");
                default -> {
                    if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
                    else b.append(c);
                }
            }
        }
        return b.append('"').toString();
    }
}
