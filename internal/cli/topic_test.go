package cli

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

func TestTopicCreateListDelete(t *testing.T) {
	kb := ktest.NewBroker(t)
	a := kb.Addr

	golden(t, "topic_create", ok(t, a, "", "topic", "create", "events", "-p", "3"))
	golden(t, "topic_create_two", ok(t, a, "", "topic", "create", "orders", "payments", "--partitions", "2"))

	// Creating it again fails with exit 1 and says why, per topic.
	r := gregor(t, a, "", "topic", "create", "events")
	if r.code != ExitFailed {
		t.Fatalf("second create: exit %d, want %d", r.code, ExitFailed)
	}
	golden(t, "topic_create_exists", r.stdout+"--- stderr\n"+r.stderr)
	golden(t, "topic_create_if_not_exists", ok(t, a, "", "topic", "create", "events", "--if-not-exists"))

	var created []struct {
		Topic             string `json:"topic"`
		ID                string `json:"id"`
		Partitions        int32  `json:"partitions"`
		ReplicationFactor int16  `json:"replication_factor"`
		Status            string `json:"status"`
	}
	decode(t, a, "", &created, "topic", "create", "metrics", "-p", "1", "--json")
	if len(created) != 1 || created[0].Topic != "metrics" || created[0].Status != "created" ||
		created[0].Partitions != 1 || created[0].ReplicationFactor != 1 || len(created[0].ID) != 22 {
		t.Errorf("create --json: %+v", created)
	}

	golden(t, "topic_list", ok(t, a, "", "topic", "list"))
	var listed []struct {
		Name       string `json:"name"`
		Partitions int    `json:"partitions"`
		Internal   bool   `json:"internal"`
	}
	decode(t, a, "", &listed, "topic", "list")
	var names []string
	for _, l := range listed {
		names = append(names, l.Name)
	}
	if got := strings.Join(names, ","); got != "events,metrics,orders,payments" {
		t.Errorf("topic list --json names: %s", got)
	}
	if listed[0].Partitions != 3 {
		t.Errorf("events has %d partitions, want 3", listed[0].Partitions)
	}

	golden(t, "topic_delete", ok(t, a, "", "topic", "delete", "orders", "payments"))
	r = gregor(t, a, "", "topic", "delete", "orders")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "UNKNOWN_TOPIC_OR_PARTITION") {
		t.Errorf("deleting a deleted topic: exit %d, stderr %q", r.code, r.stderr)
	}
	ok(t, a, "", "topic", "delete", "orders", "--if-exists")
	decode(t, a, "", &listed, "topic", "list")
	if len(listed) != 2 {
		t.Errorf("after delete: %d topics, want 2", len(listed))
	}
}

func TestTopicDescribe(t *testing.T) {
	kb := ktest.NewBroker(t)
	a := kb.Addr
	ok(t, a, "", "topic", "create", "events", "-p", "2")
	ok(t, a, "a\nb\nc\n", "produce", "events", "-p", "1")

	var topics []describedTopic
	decode(t, a, "", &topics, "topic", "describe", "events")
	if len(topics) != 1 {
		t.Fatalf("describe --json: %d topics", len(topics))
	}
	d := topics[0]
	if d.Name != "events" || len(d.Partitions) != 2 || d.ReplicationFactor != 1 {
		t.Fatalf("describe --json: %+v", d)
	}
	for i, want := range []int64{0, 3} {
		p := d.Partitions[i]
		if p.Partition != int32(i) || p.HighWatermark != want || p.LogStartOffset != 0 || len(p.Replicas) != 1 || len(p.ISR) != 1 {
			t.Errorf("partition %d: %+v, want high watermark %d", i, p, want)
		}
	}

	r := gregor(t, a, "", "topic", "describe", "nope")
	if r.code != ExitFailed || r.stderr != "gregor topic describe: unknown topic \"nope\"\n" {
		t.Errorf("describe unknown: exit %d stderr %q", r.code, r.stderr)
	}

	// What describe shows of configs and sizes depends on APIs still to
	// come; the partitions and offsets are there either way.
	out := ok(t, a, "", "topic", "describe", "events")
	if !strings.Contains(out, "HIGH-WATERMARK") || !strings.Contains(out, "\n1          0       0      0         0    0          3") {
		t.Errorf("describe table:\n%s", out)
	}
}

func TestTopicDescribeConfigsAndSizes(t *testing.T) {
	kb := ktest.NewBroker(t)
	requireAPI(t, kb, kmsg.DescribeConfigs, kmsg.DescribeLogDirs)
	a := kb.Addr
	ok(t, a, "", "topic", "create", "events", "-p", "2", "-c", "retention.ms=3600000")
	ok(t, a, "a\nb\nc\n", "produce", "events", "-p", "1")
	var topics []describedTopic
	decode(t, a, "", &topics, "topic", "describe", "events")
	d := topics[0]
	if d.ConfigsError != "" || d.SizesError != "" {
		t.Fatalf("configs/sizes unavailable although the APIs are served: %q %q", d.ConfigsError, d.SizesError)
	}
	if len(d.Configs) != 1 || d.Configs[0].Name != "retention.ms" || *d.Configs[0].Value != "3600000" || d.Configs[0].Source != "topic" {
		t.Errorf("configs set on the topic: %+v", d.Configs)
	}
	if d.Partitions[1].SizeBytes == nil || *d.Partitions[1].SizeBytes == 0 {
		t.Errorf("partition 1 holds 3 records but has no size")
	}
	out := ok(t, a, "", "topic", "describe", "events")
	for _, want := range []string{"retention.ms  3600000  topic", " B\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("describe table lacks %q:\n%s", want, out)
		}
	}
}

func TestTopicAlterConfig(t *testing.T) {
	kb := ktest.NewBroker(t)
	requireAPI(t, kb, kmsg.IncrementalAlterConfigs, kmsg.DescribeConfigs)
	a := kb.Addr
	ok(t, a, "", "topic", "create", "events")
	if out := ok(t, a, "", "topic", "alter-config", "events", "--set", "retention.ms=3600000", "--set", "cleanup.policy=compact"); out != "TOPIC   STATUS\nevents  altered\n" {
		t.Errorf("alter-config:\n%s", out)
	}
	var topics []describedTopic
	decode(t, a, "", &topics, "topic", "describe", "events")
	got := map[string]string{}
	for _, c := range topics[0].Configs {
		if c.Value != nil {
			got[c.Name] = *c.Value
		}
	}
	if got["retention.ms"] != "3600000" || got["cleanup.policy"] != "compact" {
		t.Errorf("configs after alter: %v", got)
	}
	ok(t, a, "", "topic", "alter-config", "events", "--delete", "retention.ms")
	decode(t, a, "", &topics, "topic", "describe", "events")
	for _, c := range topics[0].Configs {
		if c.Name == "retention.ms" {
			t.Errorf("retention.ms still set on the topic after --delete: %v", *c.Value)
		}
	}
	r := gregor(t, a, "", "topic", "alter-config", "events", "--set", "no.such.config=1")
	if r.code != ExitFailed {
		t.Errorf("unknown config: exit %d, want 1; stderr %s", r.code, r.stderr)
	}
}

func TestTopicAddPartitions(t *testing.T) {
	kb := ktest.NewBroker(t)
	requireAPI(t, kb, kmsg.CreatePartitions)
	a := kb.Addr
	ok(t, a, "", "topic", "create", "events", "-p", "2")
	if out := ok(t, a, "", "topic", "add-partitions", "events", "-n", "2"); out != "TOPIC   PARTITIONS  STATUS\nevents  4           added\n" {
		t.Errorf("add-partitions:\n%s", out)
	}
	var res []struct {
		Topic      string `json:"topic"`
		Partitions int    `json:"partitions"`
	}
	decode(t, a, "", &res, "topic", "add-partitions", "events", "--total", "6")
	if len(res) != 1 || res[0].Partitions != 6 {
		t.Errorf("add-partitions --total 6: %+v", res)
	}
	if r := gregor(t, a, "", "topic", "add-partitions", "events", "--total", "3"); r.code != ExitFailed {
		t.Errorf("shrinking: exit %d, want 1", r.code)
	}
}
