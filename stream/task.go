package stream

import (
	"cmp"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// taskID names a task: a sub-topology and a partition number, written
// "sub_partition" as Kafka Streams does.
type taskID struct {
	sub       int
	partition int32
}

func (id taskID) String() string { return fmt.Sprintf("%d_%d", id.sub, id.partition) }

func (id taskID) compare(o taskID) int {
	if c := cmp.Compare(id.sub, o.sub); c != 0 {
		return c
	}
	return cmp.Compare(id.partition, o.partition)
}

// task runs one sub-topology for one partition number: it processes
// the records of partition p of every source topic of the sub-topology
// and holds the stores those records update. Owned by the App's Run
// goroutine.
type task struct {
	id  taskID
	sub *subTopology
	app *App
	// stores is nil until the task is restored from its changelogs,
	// which happens before it processes its first record, and again
	// after an aborted transaction threw the stores away.
	stores map[string]store
}

func (t *task) restored() bool { return t.stores != nil }

func (t *task) kv(name string) *kvStore         { return t.stores[name].(*kvStore) }
func (t *task) window(name string) *windowStore { return t.stores[name].(*windowStore) }

// send produces r within the App's current transaction (ExactlyOnce)
// or before its next offset commit (AtLeastOnce).
func (t *task) send(r *kgo.Record) { t.app.send(r) }
