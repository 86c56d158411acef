package partlog

import (
	"path"
	"testing"

	"github.com/gregor-streaming/gregor/internal/vfs"
)

func TestTxnIndexRoundTrip(t *testing.T) {
	fs := vfs.NewMem()
	dir := "/p-0"
	if err := fs.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	x, fresh, err := OpenTxnIndex(fs, dir)
	if err != nil || !fresh {
		t.Fatalf("open: fresh=%v err=%v", fresh, err)
	}
	es := []AbortedTxn{
		{ProducerID: 1, FirstOffset: 0, LastOffset: 5, LastStableOffset: 6},
		{ProducerID: 2, FirstOffset: 3, LastOffset: 9, LastStableOffset: 10},
		{ProducerID: 3, FirstOffset: 10, LastOffset: 20, LastStableOffset: 12},
		{ProducerID: 4, FirstOffset: 12, LastOffset: 30, LastStableOffset: 31},
	}
	for _, e := range es {
		if err := x.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	// A replayed marker is already indexed.
	if err := x.Append(es[1]); err != nil || x.Len() != 4 {
		t.Fatalf("replayed append: len %d err %v", x.Len(), err)
	}
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}

	x, fresh, err = OpenTxnIndex(fs, dir)
	if err != nil || fresh || x.Len() != 4 {
		t.Fatalf("reopen: len %d fresh %v err %v", x.Len(), fresh, err)
	}
	for _, tc := range []struct {
		from, upTo int64
		want       []int64 // producer IDs
	}{
		{0, 100, []int64{1, 2, 3, 4}},
		{6, 100, []int64{2, 3, 4}},
		{6, 10, []int64{2}},     // stops at producer 2's LSO 10
		{10, 11, []int64{3}},    // producer 3 started at 10
		{21, 100, []int64{4}},   // only markers at or after 21
		{31, 100, []int64(nil)}, // nothing ends after 30
	} {
		var got []int64
		for _, e := range x.Collect(nil, tc.from, tc.upTo) {
			got = append(got, e.ProducerID)
		}
		if len(got) != len(tc.want) {
			t.Errorf("Collect(%d, %d) = %v, want %v", tc.from, tc.upTo, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("Collect(%d, %d) = %v, want %v", tc.from, tc.upTo, got, tc.want)
				break
			}
		}
	}
	if err := x.TruncateFrom(20); err != nil {
		t.Fatal(err)
	}
	if last, _ := x.Last(); x.Len() != 2 || last.ProducerID != 2 {
		t.Fatalf("after TruncateFrom(20): len %d last %+v", x.Len(), last)
	}
}

func TestTxnIndexTornTail(t *testing.T) {
	fs := vfs.NewMem()
	dir := "/p-0"
	if err := fs.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	x, _, err := OpenTxnIndex(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(3) {
		if err := x.Append(AbortedTxn{ProducerID: i, FirstOffset: i * 10, LastOffset: i*10 + 5, LastStableOffset: i*10 + 6}); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}
	// Tear the last entry.
	f, err := fs.OpenAppend(path.Join(dir, TxnIndexName))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(3*txnIndexEntrySize - 7); err != nil {
		t.Fatal(err)
	}
	f.Close()
	x, _, err = OpenTxnIndex(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if x.Len() != 2 {
		t.Fatalf("torn tail: %d entries, want 2", x.Len())
	}
	// Appending continues after the kept entries.
	if err := x.Append(AbortedTxn{ProducerID: 9, FirstOffset: 40, LastOffset: 45, LastStableOffset: 46}); err != nil {
		t.Fatal(err)
	}
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}
	x, _, err = OpenTxnIndex(fs, dir)
	if err != nil || x.Len() != 3 {
		t.Fatalf("reopen after append: len %d err %v", x.Len(), err)
	}
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}
}

func TestTxnIndexDropBefore(t *testing.T) {
	fs := vfs.NewMem()
	dir := "/p-0"
	if err := fs.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	x, _, err := OpenTxnIndex(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range int64(200) {
		if err := x.Append(AbortedTxn{ProducerID: i, FirstOffset: i * 10, LastOffset: i*10 + 5, LastStableOffset: i*10 + 6}); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.DropBefore(1500); err != nil {
		t.Fatal(err)
	}
	if x.Len() != 50 {
		t.Fatalf("len %d, want 50", x.Len())
	}
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}
	x, _, err = OpenTxnIndex(fs, dir)
	if err != nil || x.Len() != 50 {
		t.Fatalf("reopen: len %d err %v", x.Len(), err)
	}
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}
}

// TestTxnIndexCreatedByFirstAbort: a partition without aborted
// transactions has no index file; the first Append creates it, and Sync
// makes both the entry and the new file's directory entry survive a
// crash. Before the Sync a crash may lose the file, which the broker's
// log replay makes good (the snapshot after an abort follows a Sync).
func TestTxnIndexCreatedByFirstAbort(t *testing.T) {
	fs := vfs.NewMem()
	dir := "/p-0"
	if err := fs.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := fs.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	x, _, err := OpenTxnIndex(fs, dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fs.Stat(path.Join(dir, TxnIndexName)); !vfs.IsNotExist(err) {
		t.Fatalf("opening created the index file (stat: %v)", err)
	}
	e := AbortedTxn{ProducerID: 7, FirstOffset: 3, LastOffset: 8, LastStableOffset: 9}
	if err := x.Append(e); err != nil {
		t.Fatal(err)
	}
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}
	after := fs.Crash()
	y, fresh, err := OpenTxnIndex(after, dir)
	if err != nil || fresh || y.Len() != 1 {
		t.Fatalf("after Sync and a crash: len %d fresh %v err %v", y.Len(), fresh, err)
	}
	if last, _ := y.Last(); last != e {
		t.Fatalf("after a crash: %+v, want %+v", last, e)
	}
}
