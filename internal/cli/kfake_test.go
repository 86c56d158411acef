package cli

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// The tests in this file run the commands whose broker side Gregor does
// not have yet (DescribeConfigs, IncrementalAlterConfigs,
// CreatePartitions, DescribeLogDirs) against franz-go's in-memory fake
// broker, so the CLI's side is tested today. The same commands' tests
// against a real Gregor broker (TestTopicAlterConfig,
// TestTopicAddPartitions, TestTopicDescribe) skip, naming the missing
// API, until it lands.

func newFake(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()[0]
}

func TestFakeAlterConfigAndDescribe(t *testing.T) {
	a := newFake(t)
	out := ok(t, a, "", "topic", "alter-config", "events", "--set", "retention.ms=3600000", "--set", "cleanup.policy=compact")
	if out != "TOPIC   STATUS\nevents  altered\n" {
		t.Errorf("alter-config:\n%s", out)
	}
	if out := ok(t, a, "", "topic", "alter-config", "events", "--set", "retention.ms=1", "--dry-run"); !strings.Contains(out, "valid") {
		t.Errorf("alter-config --dry-run:\n%s", out)
	}
	ok(t, a, "x\ny\n", "produce", "events", "-p", "1")

	var topics []describedTopic
	decode(t, a, "", &topics, "topic", "describe", "events")
	d := topics[0]
	if d.ConfigsError != "" || d.SizesError != "" {
		t.Fatalf("describe against a broker with the APIs: %q %q", d.ConfigsError, d.SizesError)
	}
	got := map[string]string{}
	for _, c := range d.Configs {
		got[c.Name] = *c.Value
		if c.Source != "topic" {
			t.Errorf("config %s from %s listed without --all-configs", c.Name, c.Source)
		}
	}
	if got["retention.ms"] != "3600000" || got["cleanup.policy"] != "compact" || len(got) != 2 {
		t.Errorf("configs: %v", got)
	}
	if d.Partitions[1].SizeBytes == nil || *d.Partitions[1].SizeBytes == 0 || d.Partitions[1].HighWatermark != 2 {
		t.Errorf("partition 1: %+v", d.Partitions[1])
	}
	var all []describedTopic
	decode(t, a, "", &all, "topic", "describe", "events", "--all-configs")
	if len(all[0].Configs) <= len(d.Configs) {
		t.Errorf("--all-configs shows %d configs, not more than the %d set", len(all[0].Configs), len(d.Configs))
	}
	table := ok(t, a, "", "topic", "describe", "events")
	for _, want := range []string{"CONFIG          VALUE    SOURCE", "retention.ms    3600000  topic", "SIZE"} {
		if !strings.Contains(table, want) {
			t.Errorf("describe table lacks %q:\n%s", want, table)
		}
	}

	ok(t, a, "", "topic", "alter-config", "events", "--delete", "retention.ms")
	decode(t, a, "", &topics, "topic", "describe", "events")
	for _, c := range topics[0].Configs {
		if c.Name == "retention.ms" {
			t.Errorf("retention.ms still set after --delete")
		}
	}
	if r := gregor(t, a, "", "topic", "alter-config", "events"); r.code != ExitUsage {
		t.Errorf("alter-config without changes: exit %d", r.code)
	}
	if r := gregor(t, a, "", "topic", "alter-config", "nope", "--set", "retention.ms=1"); r.code != ExitFailed {
		t.Errorf("alter-config of a missing topic: exit %d, want 1 (%s)", r.code, r.stderr)
	}
}

func TestFakeAddPartitions(t *testing.T) {
	a := newFake(t)
	out := ok(t, a, "", "topic", "add-partitions", "events", "-n", "2")
	if out != "TOPIC   PARTITIONS  STATUS\nevents  4           added\n" {
		t.Errorf("add-partitions -n 2:\n%s", out)
	}
	var res []struct {
		Topic      string `json:"topic"`
		Status     string `json:"status"`
		Partitions int    `json:"partitions"`
	}
	decode(t, a, "", &res, "topic", "add-partitions", "events", "--total", "6")
	if len(res) != 1 || res[0].Partitions != 6 || res[0].Status != "added" {
		t.Errorf("add-partitions --total 6 --json: %+v", res)
	}
	if r := gregor(t, a, "", "topic", "add-partitions", "events", "--total", "3"); r.code != ExitFailed {
		t.Errorf("shrinking: exit %d, want 1 (%s)", r.code, r.stdout)
	}
	if r := gregor(t, a, "", "topic", "add-partitions", "events"); r.code != ExitUsage {
		t.Errorf("no count: exit %d, want 2", r.code)
	}
}

// Against a cluster without an API, a command that needs it says so in
// one line, and describe shows what it can with the reason for the rest.
func TestUnsupportedAPIs(t *testing.T) {
	vs := kversion.Stable()
	for _, k := range []kmsg.Key{kmsg.IncrementalAlterConfigs, kmsg.DescribeConfigs, kmsg.DescribeLogDirs, kmsg.CreatePartitions} {
		vs.SetMaxKeyVersion(k.Int16(), -1)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "events"), kfake.MaxVersions(vs))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	a := c.ListenAddrs()[0]

	r := gregor(t, a, "", "topic", "alter-config", "events", "--set", "retention.ms=1")
	if r.code != ExitFailed || r.stderr != "gregor topic alter-config: the cluster does not support IncrementalAlterConfigs, which this command needs\n" {
		t.Errorf("alter-config: exit %d, stderr %q", r.code, r.stderr)
	}
	r = gregor(t, a, "", "topic", "add-partitions", "events", "-n", "1")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "does not support CreatePartitions") {
		t.Errorf("add-partitions: exit %d, stderr %q", r.code, r.stderr)
	}
	out := ok(t, a, "", "topic", "describe", "events")
	for _, want := range []string{
		"CONFIGS  unavailable: the cluster does not support DescribeConfigs",
		"(sizes unavailable: the cluster does not support DescribeLogDirs)",
		"HIGH-WATERMARK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("describe lacks %q:\n%s", want, out)
		}
	}
}
