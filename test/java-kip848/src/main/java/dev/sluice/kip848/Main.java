package dev.sluice.kip848;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

/**
 * One consumer of a KIP-848 group (group.protocol=consumer): subscribes to a topic and prints,
 * one JSON object per line on stdout, every assignment change (the partitions it owns after
 * the change) and every record. "close" on stdin makes it commit, leave the group and exit.
 */
public final class Main {
  private static String quote(String s) {
    if (s == null) return "null";
    StringBuilder b = new StringBuilder("\"");
    for (char c : s.toCharArray()) {
      if (c == '"' || c == '\\') b.append('\\').append(c);
      else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
      else b.append(c);
    }
    return b.append('"').toString();
  }

  private static synchronized void emit(String json) {
    System.out.println(json);
    System.out.flush();
  }

  private static String partitions(Collection<TopicPartition> tps) {
    List<Integer> ps = new ArrayList<>();
    for (TopicPartition tp : tps) ps.add(tp.partition());
    ps.sort(Integer::compare);
    return ps.toString().replace(" ", "");
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 4) {
      System.err.println("usage: Main BOOTSTRAP TOPIC GROUP CLIENT_ID");
      System.exit(2);
    }
    String bootstrap = args[0], topic = args[1], group = args[2], clientId = args[3];
    Properties props = new Properties();
    props.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(ConsumerConfig.GROUP_ID_CONFIG, group);
    props.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
    props.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
    props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
    props.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    props.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    props.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());

    AtomicBoolean closing = new AtomicBoolean(false);
    KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
    Thread stdin = new Thread(() -> {
      try (BufferedReader r = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
        String line;
        while ((line = r.readLine()) != null) {
          if (line.trim().equals("close")) break;
        }
      } catch (Exception ignored) {
        // stdin closed: treat as close
      }
      closing.set(true);
      consumer.wakeup();
    });
    stdin.setDaemon(true);
    stdin.start();

    consumer.subscribe(List.of(topic), new ConsumerRebalanceListener() {
      @Override
      public void onPartitionsRevoked(Collection<TopicPartition> revoked) {
        if (!revoked.isEmpty()) consumer.commitSync();
        emit("{\"type\":\"revoked\",\"partitions\":" + partitions(revoked)
            + ",\"owned\":" + partitions(consumer.assignment()) + "}");
      }

      @Override
      public void onPartitionsAssigned(Collection<TopicPartition> assigned) {
        emit("{\"type\":\"assigned\",\"partitions\":" + partitions(assigned)
            + ",\"owned\":" + partitions(consumer.assignment()) + "}");
      }

      @Override
      public void onPartitionsLost(Collection<TopicPartition> lost) {
        emit("{\"type\":\"lost\",\"partitions\":" + partitions(lost) + "}");
      }
    });
    emit("{\"type\":\"started\",\"clientId\":" + quote(clientId) + "}");
    try {
      while (!closing.get()) {
        ConsumerRecords<String, String> records;
        try {
          records = consumer.poll(Duration.ofMillis(200));
        } catch (org.apache.kafka.common.errors.WakeupException e) {
          break;
        }
        for (ConsumerRecord<String, String> rec : records) {
          emit("{\"type\":\"record\",\"partition\":" + rec.partition() + ",\"offset\":" + rec.offset()
              + ",\"value\":" + quote(rec.value()) + "}");
        }
        if (!records.isEmpty()) consumer.commitSync();
      }
    } finally {
      try {
        consumer.commitSync();
      } catch (Exception ignored) {
        // best effort
      }
      consumer.close();
      emit("{\"type\":\"closed\"}");
    }
  }
}
