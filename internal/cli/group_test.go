package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

func TestGroupLifecycle(t *testing.T) {
	kb := ktest.NewBroker(t)
	requireAPI(t, kb, kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.OffsetCommit, kmsg.DescribeGroups, kmsg.ListGroups, kmsg.DeleteGroups)
	a := kb.Addr
	ok(t, a, "", "topic", "create", "events", "-p", "2")
	ok(t, a, "a\nb\nc\nd\ne\n", "produce", "events", "-p", "0")

	// Consume 3 records as group billing: exactly those 3 are committed.
	// Partition 1 gets its records only afterwards, so all 3 come from
	// partition 0 and the tables below do not depend on which partition
	// the consumer's fetches happened to reach first.
	out := ok(t, a, "", "consume", "events", "-g", "billing", "-n", "3")
	if n := strings.Count(out, "\n"); n != 3 {
		t.Fatalf("consume -g -n 3 printed %d records:\n%s", n, out)
	}
	ok(t, a, "f\ng\n", "produce", "events", "-p", "1")

	golden(t, "group_list", ok(t, a, "", "group", "list"))
	var lj []map[string]any
	decode(t, a, "", &lj, "group", "list")
	if len(lj) != 1 || lj[0]["group"] != "billing" || lj[0]["state"] != "Empty" || lj[0]["protocol_type"] != "consumer" {
		t.Errorf("group list --json: %v", lj)
	}

	var groups []groupJSON
	decode(t, a, "", &groups, "group", "describe", "billing")
	if len(groups) != 1 || groups[0].State != "Empty" || groups[0].TotalLag != 4 || len(groups[0].Partitions) < 1 {
		t.Fatalf("group describe --json: %+v", groups)
	}
	var committed int64
	for _, p := range groups[0].Partitions {
		if p.CurrentOffset < 0 {
			continue // nothing committed: lag counts from the log start
		}
		committed += p.CurrentOffset
		if p.Lag != p.LogEndOffset-p.CurrentOffset {
			t.Errorf("partition %d: lag %d != %d - %d", p.Partition, p.Lag, p.LogEndOffset, p.CurrentOffset)
		}
	}
	if committed != 3 {
		t.Errorf("committed offsets sum to %d, want the 3 records printed", committed)
	}

	// Reset: a dry run changes nothing; the real one moves to the end.
	golden(t, "group_reset_dry_run", ok(t, a, "", "group", "reset-offsets", "billing", "--topic", "events", "--to-earliest", "--dry-run"))
	decode(t, a, "", &groups, "group", "describe", "billing")
	if groups[0].TotalLag != 4 {
		t.Errorf("dry run changed the offsets: lag %d", groups[0].TotalLag)
	}
	golden(t, "group_reset_latest", ok(t, a, "", "group", "reset-offsets", "billing", "--topic", "events", "--to-latest"))
	golden(t, "group_describe", ok(t, a, "", "group", "describe", "billing"))
	var plan struct {
		Group      string `json:"group"`
		DryRun     bool   `json:"dry_run"`
		Partitions []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Old       *int64 `json:"old_offset"`
			New       int64  `json:"new_offset"`
		} `json:"partitions"`
	}
	decode(t, a, "", &plan, "group", "reset-offsets", "billing", "--topic", "events:0", "--to-offset", "1")
	if len(plan.Partitions) != 1 || plan.Partitions[0].New != 1 || plan.Partitions[0].Old == nil || *plan.Partitions[0].Old != 5 {
		t.Errorf("reset --to-offset 1 --json: %+v", plan)
	}
	ok(t, a, "", "group", "reset-offsets", "billing", "--all-topics", "--shift-by", "1")
	if got := ok(t, a, "", "consume", "events", "-g", "billing", "-n", "3", "-f", `%p:%v\n`); !strings.Contains(got, "0:c") {
		t.Errorf("after reset to 1 and shift by 1, partition 0 resumes at c:\n%s", got)
	}

	// An active group refuses a reset and a delete.
	cl := kb.Client(kgo.ConsumerGroup("active"), kgo.ConsumeTopics("events"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		cl.PollRecords(ctx, 1)
		var d []groupJSON
		decode(t, a, "", &d, "group", "describe", "active")
		if d[0].State == "Stable" && len(d[0].Members) == 1 {
			if len(d[0].Members[0].Assignments["events"]) != 2 {
				t.Errorf("member assignments: %v", d[0].Members[0].Assignments)
			}
			break
		}
		if ctx.Err() != nil {
			t.Fatal("group active never became Stable")
		}
	}
	r := gregor(t, a, "", "group", "reset-offsets", "active", "--topic", "events", "--to-earliest")
	if r.code != ExitFailed || !strings.Contains(r.stderr, "active members") {
		t.Errorf("reset of an active group: exit %d, stderr %q", r.code, r.stderr)
	}
	r = gregor(t, a, "", "group", "delete", "active")
	if r.code != ExitFailed || !strings.Contains(r.stdout, "NON_EMPTY_GROUP") {
		t.Errorf("delete of an active group: exit %d, stdout %q", r.code, r.stdout)
	}
	cl.Close()

	golden(t, "group_delete", ok(t, a, "", "group", "delete", "billing"))
	r = gregor(t, a, "", "group", "describe", "billing")
	if r.code != ExitFailed || r.stderr != "gregor group describe: group \"billing\" does not exist\n" {
		t.Errorf("describe deleted group: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestGroupDescribeConsumerGroup: group describe shows a KIP-848
// consumer group (which DescribeGroups calls not found) through
// ConsumerGroupDescribe, with its lag.
func TestGroupDescribeConsumerGroup(t *testing.T) {
	kb := ktest.NewBroker(t, ktest.Set("group.consumer.heartbeat.interval.ms", "100"))
	requireAPI(t, kb, kmsg.ConsumerGroupHeartbeat, kmsg.ConsumerGroupDescribe)
	a := kb.Addr
	ok(t, a, "", "topic", "create", "orders", "-p", "2")
	ok(t, a, "a\nb\nc\n", "produce", "orders", "-p", "0")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := kb.Client(kgo.ConsumerGroup("next"), kgo.ConsumeTopics("orders"), kgo.ServerSideBalancer(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	for got := 0; got < 3; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of 3", got)
		}
		got += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	ok(t, a, "d\n", "produce", "orders", "-p", "0")

	var groups []groupJSON
	deadline := time.Now().Add(20 * time.Second)
	for {
		decode(t, a, "", &groups, "group", "describe", "next")
		if groups[0].State == "Stable" && len(groups[0].Members) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	g := groups[0]
	if g.State != "Stable" || g.ProtocolType != "consumer" || g.Protocol != "uniform" || len(g.Members) != 1 ||
		len(g.Members[0].Assignments["orders"]) != 2 || g.TotalLag != 1 {
		t.Fatalf("group describe --json: %+v", g)
	}
	out := ok(t, a, "", "group", "describe", "next")
	if !strings.Contains(out, "consumer/uniform") || !strings.Contains(out, "orders:0,1") {
		t.Errorf("group describe:\n%s", out)
	}
	cl.Close()
}
