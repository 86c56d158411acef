package stream

import (
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func TestWindowStarts(t *testing.T) {
	for _, tc := range []struct {
		w    Windows
		ts   int64
		want []int64
	}{
		{TumblingWindows(time.Minute, 0), 0, []int64{0}},
		{TumblingWindows(time.Minute, 0), 59_999, []int64{0}},
		{TumblingWindows(time.Minute, 0), 60_000, []int64{60_000}},
		{HoppingWindows(time.Minute, 20*time.Second, 0), 65_000, []int64{20_000, 40_000, 60_000}},
		{HoppingWindows(time.Minute, 20*time.Second, 0), 5_000, []int64{0}},
		{HoppingWindows(10*time.Second, 3*time.Second, 0), 12_000, []int64{3_000, 6_000, 9_000, 12_000}},
	} {
		if got := tc.w.startsFor(tc.ts); !slices.Equal(got, tc.want) {
			t.Errorf("%+v.startsFor(%d) = %v, want %v", tc.w, tc.ts, got, tc.want)
		}
	}
}

// A window store expires closed windows with tombstones, and a store
// restored from those changelog records has the same windows and stream
// time.
func TestWindowStoreExpireAndRestore(t *testing.T) {
	w := TumblingWindows(10*time.Second, 5*time.Second)
	spec := newStoreSpec("w", &w, String(), Int64())
	var log []*kgo.Record
	a := &App{}
	tk := &task{app: a}
	st := newStore(spec, "app-w-changelog", 0).(*windowStore)
	// Capture the changelog instead of producing it.
	put := func(key string, ts int64) {
		st.observe(ts)
		start := w.startsFor(ts)[0]
		if st.closed(start) {
			return
		}
		e, _ := st.get([]byte(key), start)
		n, _ := e.value.(int64)
		if err := st.put(tk, []byte(key), key, start, n+1, ts); err != nil {
			t.Fatal(err)
		}
		st.expire(tk)
	}
	a.sendHook = func(r *kgo.Record) { log = append(log, r) }
	put("a", 1_000)
	put("b", 2_000)
	put("a", 12_000)
	put("a", 14_000) // stream time 14s: window 0 closes at 15s
	if len(st.data) != 3 {
		t.Fatalf("store has %d windows, want 3", len(st.data))
	}
	put("b", 16_000) // closes window 0 of a and b
	if len(st.data) != 2 || !slices.Equal(st.starts, []int64{10_000}) {
		t.Fatalf("after expiry: %d windows, starts %v; want 2 in window 10s", len(st.data), st.starts)
	}
	tombstones := 0
	for _, r := range log {
		if r.Value == nil {
			tombstones++
		}
	}
	if tombstones != 2 {
		t.Errorf("%d tombstones logged, want 2", tombstones)
	}
	restored := newStore(spec, "app-w-changelog", 0).(*windowStore)
	for _, r := range log {
		if err := restored.restore(r); err != nil {
			t.Fatal(err)
		}
	}
	if restored.streamTime != 16_000 || len(restored.data) != 2 || !slices.Equal(restored.starts, st.starts) {
		t.Fatalf("restored: stream time %d, %d windows, starts %v", restored.streamTime, len(restored.data), restored.starts)
	}
	e, _ := restored.get([]byte("a"), 10_000)
	if e.value != int64(2) {
		t.Errorf("restored a@10s = %v, want 2", e.value)
	}
}
