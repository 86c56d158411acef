package stream_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/gregor-streaming/gregor/stream"
)

// Word count end to end: lines in, a word count per word out, through
// a repartition topic and a changelogged store, under both guarantees.
func TestWordCount(t *testing.T) {
	for _, g := range []stream.Guarantee{stream.AtLeastOnce, stream.ExactlyOnce} {
		t.Run(g.String(), func(t *testing.T) {
			br := newBroker(t)
			br.CreateTopic("lines", 3, nil)
			br.CreateTopic("word-counts", 3, nil)
			recs, want := lines("lines", "l", 300, 1)
			produce(t, br, recs...)

			app := "wc-" + g.String()
			r := start(t, wordCount("lines", "word-counts", nil), stream.Config{
				ApplicationID: app, Brokers: []string{br.Addr}, ProcessingGuarantee: g,
				ClientOpts: quickGroup(),
			})
			committed := g == stream.ExactlyOnce
			waitFor(t, 30*time.Second, func() (bool, string) {
				got, _ := countsOf(t, br, "word-counts", committed)
				diff := sameCounts(got, want)
				return diff == "", diff
			}, r)
			if committed {
				_, seq := countsOf(t, br, "word-counts", true)
				checkExactlyOnce(t, seq)
			}

			// The internal topics: the repartition topic sized like the
			// input, the changelog compacted with one partition per task.
			ctx := ctxT(t, 10*time.Second)
			adm := br.Admin()
			topics, err := adm.ListTopics(ctx, app+"-counts-repartition", app+"-counts-changelog")
			if err != nil {
				t.Fatal(err)
			}
			for name, d := range topics {
				if d.Err != nil || len(d.Partitions) != 3 {
					t.Errorf("%s: %d partitions, err %v; want 3", name, len(d.Partitions), d.Err)
				}
			}
			cfgs, err := adm.DescribeTopicConfigs(ctx, app+"-counts-changelog")
			if err != nil {
				t.Fatal(err)
			}
			if c, err := cfgs.On(app+"-counts-changelog", nil); err != nil {
				t.Fatal(err)
			} else if v := configValue(c.Configs, "cleanup.policy"); v != "compact" {
				t.Errorf("changelog cleanup.policy = %q, want compact", v)
			}
			// The changelog holds the final count of every word.
			last := map[string]int64{}
			for _, rec := range readTopic(t, br, app+"-counts-changelog", committed) {
				n, _ := stream.Int64().Decode(rec.Value)
				last[string(rec.Key)] = n
			}
			if diff := sameCounts(last, want); diff != "" {
				t.Errorf("changelog: %s", diff)
			}
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if s := r.app.Stats(); s.Commits == 0 || s.Processed < 300 {
				t.Errorf("stats %+v: want commits and at least 300 records processed", s)
			}
		})
	}
}

func configValue(cs []kadm.Config, name string) string {
	for _, c := range cs {
		if c.Key == name {
			return c.MaybeValue()
		}
	}
	return ""
}
