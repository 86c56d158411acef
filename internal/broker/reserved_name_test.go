package broker_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestClusterMetadataTopicRefused: a topic named __cluster_metadata would
// keep its partition 0 in the directory of the broker's own metadata
// log (__cluster_metadata-0), and deleting it would remove that
// directory with every topic's definition in it. Kafka refuses the name
// (INVALID_REQUEST); so does Gregor, and the broker's topics survive a
// restart.
func TestClusterMetadataTopicRefused(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("kept", 1, nil)
	ctx := ctxT(t, 20*time.Second)
	adm := b.Admin()
	resp, err := adm.CreateTopics(ctx, 1, 1, nil, "__cluster_metadata")
	if err != nil {
		t.Fatal(err)
	}
	if err := resp["__cluster_metadata"].Err; err != kerr.InvalidRequest {
		t.Errorf("create __cluster_metadata: %v, want INVALID_REQUEST", err)
	}
	// Nor by a Metadata request that may create topics.
	cl0 := b.Client()
	defer cl0.Close()
	mreq := kmsg.NewPtrMetadataRequest()
	mreq.AllowAutoTopicCreation = true
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("__cluster_metadata")
	mreq.Topics = append(mreq.Topics, rt)
	mresp, err := mreq.RequestWith(ctx, cl0)
	if err != nil {
		t.Fatal(err)
	}
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("metadata with auto-creation: %+v", mresp.Topics)
	}
	topics, err := adm.ListTopics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has("__cluster_metadata") {
		t.Error("__cluster_metadata was created")
	}
	// Whatever happened, deleting it must not take the broker's
	// metadata with it.
	if _, err := adm.DeleteTopics(ctx, "__cluster_metadata"); err != nil {
		t.Fatal(err)
	}
	b.Restart()
	cl := b.Client(kgo.DefaultProduceTopic("kept"))
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatalf("topic kept after the restart: %v", err)
	}
}
