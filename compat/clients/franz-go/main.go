// The franz-go client program of the compatibility suite (github.com/twmb/franz-go kgo + kadm).
//
//	go build -o client . && ./client --bootstrap 127.0.0.1:9092 --scenario produce --topic T [--group G] [--ts-base MS]
//
// Prints one JSON line (see compat/lib/scenario.ts).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	records       = 10000
	partitions    = 6
	placementKeys = 1000
	firstConsumer = 4000
	alterName     = "retention.ms"
	alterValue    = "3600000"
	deleteBefore  = 100
)

var (
	bootstrap = flag.String("bootstrap", "127.0.0.1:9092", "")
	scenario  = flag.String("scenario", "metadata", "")
	topic     = flag.String("topic", "compat", "")
	group     = flag.String("group", "", "")
	tsBaseArg = flag.Int64("ts-base", -1, "")
)

type out struct {
	Client   string         `json:"client"`
	Scenario string         `json:"scenario"`
	OK       bool           `json:"ok"`
	NA       bool           `json:"na,omitempty"`
	Detail   string         `json:"detail"`
	Data     map[string]any `json:"data,omitempty"`
}

func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/twmb/franz-go" {
				return d.Version
			}
		}
	}
	return "?"
}

func newClient(opts ...kgo.Opt) (*kgo.Client, error) {
	base := []kgo.Opt{kgo.SeedBrokers(*bootstrap), kgo.ClientID("sluice-compat-franz-go"), kgo.RequestTimeoutOverhead(15 * time.Second)}
	return kgo.NewClient(append(base, opts...)...)
}

func withAdmin(fn func(ctx context.Context, adm *kadm.Client) out) out {
	cl, err := newClient()
	if err != nil {
		return out{Detail: err.Error()}
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	return fn(ctx, kadm.NewClient(cl))
}

func metadata() out {
	return withAdmin(func(ctx context.Context, adm *kadm.Client) out {
		av, err := adm.ApiVersions(ctx)
		if err != nil {
			return out{Detail: "ApiVersions: " + err.Error()}
		}
		nKeys := 0
		av.Each(func(b kadm.BrokerApiVersions) {
			if r := b.Raw(); r != nil {
				nKeys = len(r.ApiKeys)
			}
		})
		m, err := adm.Metadata(ctx)
		if err != nil {
			return out{Detail: "Metadata: " + err.Error()}
		}
		ok := len(m.Brokers) >= 1 && m.Cluster != ""
		return out{OK: ok, Detail: fmt.Sprintf("%d broker(s), cluster %s, controller %d, %d topic(s), %d API keys advertised", len(m.Brokers), m.Cluster, m.Controller, len(m.Topics), nKeys)}
	})
}

func createTopic() out {
	return withAdmin(func(ctx context.Context, adm *kadm.Client) out {
		r, err := adm.CreateTopics(ctx, partitions, 1, nil, *topic)
		if err != nil {
			return out{Detail: err.Error()}
		}
		if e := r[*topic].Err; e != nil {
			return out{Detail: "CreateTopics: " + e.Error() + " " + r[*topic].ErrMessage}
		}
		deadline := time.Now().Add(10 * time.Second)
		n, leaders := 0, false
		for time.Now().Before(deadline) {
			m, err := adm.Metadata(ctx, *topic)
			if err == nil {
				td := m.Topics[*topic]
				n = len(td.Partitions)
				leaders = n > 0
				for _, p := range td.Partitions {
					if p.Leader < 0 || p.Err != nil {
						leaders = false
					}
				}
				if n == partitions && leaders {
					break
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
		return out{OK: n == partitions && leaders, Detail: fmt.Sprintf("%d partitions, all with a leader: %v, topic id %s", n, leaders, r[*topic].ID)}
	})
}

func produce() out {
	cl, err := newClient(kgo.DefaultProduceTopic(*topic), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(5*time.Millisecond), kgo.RecordDeliveryTimeout(60*time.Second))
	if err != nil {
		return out{Detail: err.Error()}
	}
	defer cl.Close()
	tsBase := time.Now().UnixMilli()
	placement := make([]int32, placementKeys)
	var mu sync.Mutex
	var firstErr error
	acked := 0
	var wg sync.WaitGroup
	ctx := context.Background()
	for i := 0; i < records; i++ {
		i := i
		wg.Add(1)
		r := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: []byte(fmt.Sprintf("value-%d", i)), Timestamp: time.UnixMilli(tsBase + int64(i))}
		cl.Produce(ctx, r, func(r *kgo.Record, err error) {
			defer wg.Done()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				return
			}
			acked++
			if i < placementKeys {
				placement[i] = r.Partition
			}
		})
	}
	wg.Wait()
	detail := fmt.Sprintf("%d records acknowledged (idempotent, acks=all)", acked)
	if firstErr != nil {
		detail += "; first error: " + firstErr.Error()
	}
	return out{OK: acked == records, Detail: detail, Data: map[string]any{"tsBase": tsBase, "acked": acked, "placement": placement}}
}

func consumeOnce(limit int, already map[string]bool) ([]string, error) {
	cl, err := newClient(kgo.ConsumerGroup(*group), kgo.ConsumeTopics(*topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.SessionTimeout(10*time.Second), kgo.HeartbeatInterval(time.Second))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var keys []string
	last := map[int32]*kgo.Record{}
	union := len(already)
	deadline := time.Now().Add(90 * time.Second)
	lastData := time.Now().Add(10 * time.Second)
outer:
	for time.Now().Before(deadline) && time.Since(lastData) < 8*time.Second {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		fs := cl.PollFetches(ctx)
		cancel()
		for _, e := range fs.Errors() {
			if !errors.Is(e.Err, context.DeadlineExceeded) {
				return keys, fmt.Errorf("fetch %s/%d: %w", e.Topic, e.Partition, e.Err)
			}
		}
		it := fs.RecordIter()
		for !it.Done() {
			r := it.Next()
			lastData = time.Now()
			k := string(r.Key)
			keys = append(keys, k)
			if !already[k] {
				union++
			}
			last[r.Partition] = r
			if len(keys) >= limit || union >= records {
				break outer
			}
		}
	}
	recs := make([]*kgo.Record, 0, len(last))
	for _, r := range last {
		recs = append(recs, r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.CommitRecords(ctx, recs...); err != nil {
		return keys, fmt.Errorf("commit: %w", err)
	}
	return keys, nil
}

func consumeGroup() out {
	first, err := consumeOnce(firstConsumer, map[string]bool{})
	if err != nil {
		return out{Detail: fmt.Sprintf("first consumer after %d records: %v", len(first), err)}
	}
	seen := map[string]bool{}
	for _, k := range first {
		seen[k] = true
	}
	second, err := consumeOnce(records, seen)
	if err != nil {
		return out{Detail: fmt.Sprintf("restarted consumer after %d records: %v", len(second), err)}
	}
	for _, k := range second {
		seen[k] = true
	}
	dup := len(first) + len(second) - len(seen)
	lost := records - len(seen)
	return out{OK: lost == 0 && dup == 0 && len(first) == firstConsumer,
		Detail: fmt.Sprintf("first consumer %d, restarted consumer %d, lost %d, duplicates %d", len(first), len(second), lost, dup),
		Data:   map[string]any{"first": len(first), "second": len(second), "lost": lost, "duplicates": dup}}
}

func describeGroup() out {
	return withAdmin(func(ctx context.Context, adm *kadm.Client) out {
		lags, err := adm.Lag(ctx, *group)
		if err != nil {
			return out{Detail: err.Error()}
		}
		l := lags[*group]
		if e := l.Error(); e != nil {
			return out{Detail: "Lag: " + e.Error()}
		}
		var committed int64
		for _, ps := range l.Lag {
			for _, p := range ps {
				if p.Commit.At > 0 {
					committed += p.Commit.At
				}
			}
		}
		total := l.Lag.Total()
		ok := l.State == "Empty" && l.ProtocolType == "consumer" && committed == records && total == 0
		return out{OK: ok, Detail: fmt.Sprintf("state %s, protocolType %q, %d member(s), coordinator %d, committed %d, lag %d", l.State, l.ProtocolType, len(l.Members), l.Coordinator.NodeID, committed, total)}
	})
}

func offsetsByTime() out {
	if *tsBaseArg < 0 {
		return out{Detail: "--ts-base missing (produce did not run)"}
	}
	return withAdmin(func(ctx context.Context, adm *kadm.Client) out {
		mid := int64(records / 2)
		byTime, err := adm.ListOffsetsAfterMilli(ctx, *tsBaseArg+mid, *topic)
		if err == nil {
			err = byTime.Error()
		}
		if err != nil {
			return out{Detail: "ListOffsetsAfterMilli: " + err.Error()}
		}
		start, _ := adm.ListStartOffsets(ctx, *topic)
		end, err := adm.ListEndOffsets(ctx, *topic)
		if err != nil {
			return out{Detail: "ListEndOffsets: " + err.Error()}
		}
		var atOrAfter, esum, lsum int64
		end.Each(func(e kadm.ListedOffset) {
			lsum += e.Offset
			if s, ok := start.Lookup(*topic, e.Partition); ok {
				esum += s.Offset
			}
			if b, ok := byTime.Lookup(*topic, e.Partition); ok && b.Offset >= 0 {
				atOrAfter += e.Offset - b.Offset
			}
		})
		ok := atOrAfter == records-mid && esum == 0 && lsum == records
		return out{OK: ok, Detail: fmt.Sprintf("records at or after ts(record %d): %d (want %d); earliest sum %d, latest sum %d", mid, atOrAfter, records-mid, esum, lsum)}
	})
}

func configs() out {
	return withAdmin(func(ctx context.Context, adm *kadm.Client) out {
		v := alterValue
		ar, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: alterName, Value: &v}}, *topic)
		if err != nil {
			return out{Detail: "IncrementalAlterConfigs: " + err.Error()}
		}
		for _, r := range ar {
			if r.Err != nil {
				return out{Detail: "IncrementalAlterConfigs: " + r.Err.Error() + " " + r.ErrMessage}
			}
		}
		rc, err := adm.DescribeTopicConfigs(ctx, *topic)
		if err != nil {
			return out{Detail: "DescribeConfigs: " + err.Error()}
		}
		c, err := rc.On(*topic, nil)
		if err != nil {
			return out{Detail: "DescribeConfigs: " + err.Error()}
		}
		var set, seg *kadm.Config
		for i := range c.Configs {
			switch c.Configs[i].Key {
			case alterName:
				set = &c.Configs[i]
			case "segment.bytes":
				seg = &c.Configs[i]
			}
		}
		ok := set != nil && set.MaybeValue() == alterValue && set.Source == kmsg.ConfigSourceDynamicTopicConfig && seg != nil && seg.Source == kmsg.ConfigSourceDefaultConfig
		d := fmt.Sprintf("%d entries", len(c.Configs))
		if set != nil {
			d += fmt.Sprintf("; %s=%s (%s)", alterName, set.MaybeValue(), set.Source)
		}
		if seg != nil {
			d += fmt.Sprintf("; segment.bytes=%s (%s)", seg.MaybeValue(), seg.Source)
		}
		return out{OK: ok, Detail: d}
	})
}

func deleteRecords() out {
	return withAdmin(func(ctx context.Context, adm *kadm.Client) out {
		os := kadm.Offsets{}
		os.Add(kadm.Offset{Topic: *topic, Partition: 0, At: deleteBefore, LeaderEpoch: -1})
		r, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			return out{Detail: "DeleteRecords: " + err.Error()}
		}
		p, ok := r.Lookup(*topic, 0)
		if !ok || p.Err != nil {
			return out{Detail: fmt.Sprintf("DeleteRecords: %v", p.Err)}
		}
		start, err := adm.ListStartOffsets(ctx, *topic)
		if err != nil {
			return out{Detail: "ListOffsets: " + err.Error()}
		}
		s, _ := start.Lookup(*topic, 0)
		return out{OK: p.LowWatermark == deleteBefore && s.Offset == deleteBefore, Detail: fmt.Sprintf("low watermark %d, earliest offset %d (want %d)", p.LowWatermark, s.Offset, deleteBefore)}
	})
}

func deleteTopic() out {
	return withAdmin(func(ctx context.Context, adm *kadm.Client) out {
		r, err := adm.DeleteTopics(ctx, *topic)
		if err != nil {
			return out{Detail: "DeleteTopics: " + err.Error()}
		}
		if e := r[*topic].Err; e != nil {
			return out{Detail: "DeleteTopics: " + e.Error()}
		}
		deadline := time.Now().Add(10 * time.Second)
		listed := true
		for time.Now().Before(deadline) {
			td, err := adm.ListTopics(ctx)
			if err == nil && !td.Has(*topic) {
				listed = false
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if listed {
			return out{Detail: "topic still listed 10 s after DeleteTopics"}
		}
		return out{OK: true, Detail: "deleted; no longer listed"}
	})
}

func main() {
	flag.Parse()
	if *group == "" {
		*group = *topic + "-group"
	}
	fns := map[string]func() out{
		"metadata": metadata, "create-topic": createTopic, "produce": produce, "consume-group": consumeGroup,
		"describe-group": describeGroup, "offsets-by-time": offsetsByTime, "configs": configs,
		"delete-records": deleteRecords, "delete-topic": deleteTopic,
	}
	var o out
	if fn, ok := fns[*scenario]; ok {
		done := make(chan out, 1)
		go func() { done <- fn() }()
		select {
		case o = <-done:
		case <-time.After(240 * time.Second):
			o = out{Detail: *scenario + ": timed out after 240 s"}
		}
	} else {
		o = out{NA: true, Detail: "unknown scenario " + *scenario}
	}
	o.Client = "franz-go-" + strings.TrimPrefix(version(), "v")
	o.Scenario = *scenario
	b, _ := json.Marshal(o)
	fmt.Println(string(b))
	os.Exit(0)
}
