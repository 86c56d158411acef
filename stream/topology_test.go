package stream

import (
	"slices"
	"strings"
	"testing"
)

func wordTopology() *Builder {
	b := NewBuilder()
	lines := Source(b, "lines", String(), String())
	words := FlatMapValues(lines, func(_, l string) []string { return strings.Fields(l) })
	GroupBy(words, func(_, w string) string { return w }, String(), String()).Count("counts").ToStream().To("out", String(), Int64())
	return b
}

func TestCompileSubTopologies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func() *Builder
		// subs lists each sub-topology's sources and stores.
		subs [][2][]string
		rep  []string
	}{
		{
			name:  "word count splits at the repartition",
			build: wordTopology,
			subs: [][2][]string{
				{{"lines"}, nil},
				{{"app-counts-repartition"}, {"counts"}},
			},
			rep: []string{"app-counts-repartition"},
		},
		{
			name: "group by key without a key change does not repartition",
			build: func() *Builder {
				b := NewBuilder()
				s := Source(b, "in", String(), Int64())
				MapValues(s, func(_ string, v int64) int64 { return v * 2 }).GroupByKey(String(), Int64()).Count("n")
				return b
			},
			subs: [][2][]string{{{"in"}, {"n"}}},
		},
		{
			name: "a join puts stream and table in one sub-topology",
			build: func() *Builder {
				b := NewBuilder()
				tbl := SourceTable(b, "customers", "customers", String(), String())
				orders := Source(b, "orders", String(), String())
				Join(orders, tbl, func(_, o, c string) string { return o + c }).To("out", String(), String())
				Source(b, "other", String(), String()).To("out2", String(), String())
				return b
			},
			subs: [][2][]string{
				{{"customers", "orders"}, {"customers"}},
				{{"other"}, nil},
			},
		},
		{
			name: "explicit repartition before a join",
			build: func() *Builder {
				b := NewBuilder()
				tbl := SourceTable(b, "customers", "customers", String(), String())
				orders := Map(Source(b, "orders", String(), String()), func(k, v string) (string, string) { return v, k })
				Join(Repartition(orders, "by-customer", String(), String()), tbl, func(_, o, c string) string { return o + c })
				return b
			},
			subs: [][2][]string{
				{{"app-by-customer-repartition", "customers"}, {"customers"}},
				{{"orders"}, nil},
			},
			rep: []string{"app-by-customer-repartition"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topo, err := compile(tc.build(), "app")
			if err != nil {
				t.Fatal(err)
			}
			var got [][2][]string
			for _, s := range topo.subs {
				got = append(got, [2][]string{s.sources, s.stores})
			}
			if len(got) != len(tc.subs) {
				t.Fatalf("sub-topologies %v, want %v", got, tc.subs)
			}
			for i := range got {
				if !slices.Equal(got[i][0], tc.subs[i][0]) || !slices.Equal(got[i][1], tc.subs[i][1]) {
					t.Errorf("sub-topology %d: %v, want %v", i, got[i], tc.subs[i])
				}
			}
			var rep []string
			for _, topic := range topo.repTopic {
				rep = append(rep, topic)
			}
			slices.Sort(rep)
			if !slices.Equal(rep, tc.rep) {
				t.Errorf("repartition topics %v, want %v", rep, tc.rep)
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(b *Builder)
		want  string
	}{
		{"empty", func(*Builder) {}, "no source"},
		{"nil serde", func(b *Builder) { Source[string, string](b, "in", nil, String()) }, "nil serde"},
		{"topic read twice", func(b *Builder) {
			Source(b, "in", String(), String())
			Source(b, "in", String(), String())
		}, "read by two sources"},
		{"store name twice", func(b *Builder) {
			s := Source(b, "in", String(), String())
			s.GroupByKey(String(), String()).Count("n")
			s.GroupByKey(String(), String()).Count("n")
		}, `store name "n" used twice`},
		{"bad store name", func(b *Builder) {
			Source(b, "in", String(), String()).GroupByKey(String(), String()).Count("a/b")
		}, "store name"},
		{"join after a key change", func(b *Builder) {
			tbl := SourceTable(b, "t", "t", String(), String())
			s := Map(Source(b, "in", String(), String()), func(k, v string) (string, string) { return v, k })
			Join(s, tbl, func(_, a, b string) string { return a + b })
		}, "Repartition it first"},
		{"bad window", func(b *Builder) {
			g := Source(b, "in", String(), String()).GroupByKey(String(), String())
			WindowedCount(g.WindowedBy(HoppingWindows(0, 0, 0)), "w")
		}, "window size"},
		{"sink is a source", func(b *Builder) {
			Source(b, "in", String(), String()).To("in", String(), String())
		}, "both a source and a sink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBuilder()
			tc.build(b)
			_, err := New(b, Config{ApplicationID: "app", Brokers: []string{"localhost:9092"}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{Brokers: []string{"x:1"}},
		{ApplicationID: "has space", Brokers: []string{"x:1"}},
		{ApplicationID: "app"},
		{ApplicationID: "app", Brokers: []string{"x:1"}, ProcessingGuarantee: 7},
	} {
		if _, err := New(wordTopology(), cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

func TestResolvePartitions(t *testing.T) {
	t.Run("repartition sized by its writer", func(t *testing.T) {
		topo, err := compile(wordTopology(), "app")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := topo.resolvePartitions(map[string]int32{"lines": 6})
		if err != nil {
			t.Fatal(err)
		}
		if rep["app-counts-repartition"] != 6 || topo.subs[0].partitions != 6 || topo.subs[1].partitions != 6 {
			t.Fatalf("repartition %v, tasks %d and %d; want 6 everywhere", rep, topo.subs[0].partitions, topo.subs[1].partitions)
		}
	})
	t.Run("repartition joined with a table takes the table's count", func(t *testing.T) {
		b := NewBuilder()
		tbl := SourceTable(b, "customers", "customers", String(), String())
		orders := Map(Source(b, "orders", String(), String()), func(k, v string) (string, string) { return v, k })
		Join(Repartition(orders, "by-customer", String(), String()), tbl, func(_, o, c string) string { return o + c })
		topo, err := compile(b, "app")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := topo.resolvePartitions(map[string]int32{"customers": 4, "orders": 9})
		if err != nil {
			t.Fatal(err)
		}
		if rep["app-by-customer-repartition"] != 4 {
			t.Fatalf("repartition %v, want 4 partitions", rep)
		}
	})
	t.Run("co-partitioning", func(t *testing.T) {
		b := NewBuilder()
		tbl := SourceTable(b, "customers", "customers", String(), String())
		Join(Source(b, "orders", String(), String()), tbl, func(_, o, c string) string { return o + c })
		topo, err := compile(b, "app")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := topo.resolvePartitions(map[string]int32{"customers": 2, "orders": 3}); err == nil || !strings.Contains(err.Error(), "co-partitioned") {
			t.Fatalf("err %v, want a co-partitioning error", err)
		}
	})
}

func TestDescribe(t *testing.T) {
	got := wordTopology().Describe("wc")
	for _, want := range []string{"sub-topology 0", "sources: lines", "repartition: wc-counts-repartition", "sub-topology 1", "store: counts (changelog wc-counts-changelog)", "sinks: out"} {
		if !strings.Contains(got, want) {
			t.Errorf("Describe lacks %q:\n%s", want, got)
		}
	}
}
