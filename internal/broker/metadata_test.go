package broker_test

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// TestMetadataTopicIDs follows Kafka's handleTopicMetadataRequest for
// topics requested by ID: from v12 only (v10 and v11 carry the fields
// but a null name or an ID is INVALID_REQUEST for every topic); when any
// ID is given the request is answered for its IDs alone, each once; an
// unknown ID is UNKNOWN_TOPIC_ID. An empty name is a name, and invalid.
func TestMetadataTopicIDs(t *testing.T) {
	b := ktest.NewBroker(t, ktest.Set("auto.create.topics.enable", "false"))
	b.CreateTopic("t", 2, nil)
	b.CreateTopic("u", 1, nil)
	md := send[*kmsg.MetadataResponse](t, b, &kmsg.MetadataRequest{Version: 12, Topics: []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("t")}}})
	id := md.Topics[0].TopicID
	unknown := [16]byte{1, 2, 3}

	r := kmsg.NewPtrMetadataRequest()
	r.Version = 12
	r.Topics = []kmsg.MetadataRequestTopic{{TopicID: id}, {Topic: kmsg.StringPtr("u")}, {TopicID: id}, {TopicID: unknown}}
	resp := send[*kmsg.MetadataResponse](t, b, r)
	var known, missing int
	for _, mt := range resp.Topics {
		switch {
		case mt.TopicID == id && mt.ErrorCode == 0 && mt.Topic != nil && *mt.Topic == "t" && len(mt.Partitions) == 2:
			known++
		case mt.TopicID == unknown && mt.ErrorCode == kerr.UnknownTopicID.Code && mt.Topic == nil:
			missing++
		default:
			t.Errorf("v12 by ID: unexpected topic %+v", mt)
		}
	}
	if known != 1 || missing != 1 {
		t.Errorf("v12 by ID: %d known, %d unknown entries in %+v", known, missing, resp.Topics)
	}

	for _, v := range []int16{10, 11} {
		r := kmsg.NewPtrMetadataRequest()
		r.Version = v
		r.Topics = []kmsg.MetadataRequestTopic{{TopicID: id}, {Topic: kmsg.StringPtr("u")}}
		resp := send[*kmsg.MetadataResponse](t, b, r)
		if len(resp.Topics) != 2 {
			t.Fatalf("v%d by ID: %+v", v, resp.Topics)
		}
		for _, mt := range resp.Topics {
			errCode(t, "v"+itoa(int32(v))+" by ID", mt.ErrorCode, kerr.InvalidRequest)
			if len(mt.Partitions) != 0 {
				t.Errorf("v%d by ID: partitions %+v", v, mt.Partitions)
			}
		}
		if len(resp.Brokers) != 0 {
			t.Errorf("v%d by ID: brokers %+v", v, resp.Brokers)
		}
	}

	for _, v := range []int16{1, 4, 9, 10, 12} {
		r := kmsg.NewPtrMetadataRequest()
		r.Version = v
		r.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("")}}
		resp := send[*kmsg.MetadataResponse](t, b, r)
		if len(resp.Topics) != 1 || resp.Topics[0].Topic == nil || *resp.Topics[0].Topic != "" {
			t.Fatalf("v%d empty name: %+v", v, resp.Topics)
		}
		errCode(t, "v"+itoa(int32(v))+" empty name", resp.Topics[0].ErrorCode, kerr.InvalidTopicException)
	}
}

// TestMetadataNamesOnceAndInternal: a topic named twice is answered once
// (Kafka turns the names into a set); a missing internal topic is
// flagged is_internal; and with auto-creation an internal topic is
// created with its coordinator's settings, as Kafka's
// AutoTopicCreationManager does, instead of never existing.
func TestMetadataNamesOnceAndInternal(t *testing.T) {
	b := ktest.NewBroker(t)
	b.CreateTopic("t", 1, nil)
	r := kmsg.NewPtrMetadataRequest()
	r.Version, r.AllowAutoTopicCreation = 12, false
	r.Topics = []kmsg.MetadataRequestTopic{
		{Topic: kmsg.StringPtr("t")}, {Topic: kmsg.StringPtr("t")},
		{Topic: kmsg.StringPtr("missing")}, {Topic: kmsg.StringPtr("missing")},
		{Topic: kmsg.StringPtr("__transaction_state")},
	}
	resp := send[*kmsg.MetadataResponse](t, b, r)
	if len(resp.Topics) != 3 {
		t.Fatalf("names twice: %d topics: %+v", len(resp.Topics), resp.Topics)
	}
	txn := resp.Topics[2]
	errCode(t, "__transaction_state without auto-creation", txn.ErrorCode, kerr.UnknownTopicOrPartition)
	if !txn.IsInternal {
		t.Errorf("missing __transaction_state not flagged internal: %+v", txn)
	}

	r.AllowAutoTopicCreation = true
	r.Topics = []kmsg.MetadataRequestTopic{
		{Topic: kmsg.StringPtr("auto")}, {Topic: kmsg.StringPtr("auto")},
		{Topic: kmsg.StringPtr("__consumer_offsets")},
	}
	resp = send[*kmsg.MetadataResponse](t, b, r)
	if len(resp.Topics) != 2 {
		t.Fatalf("auto-created names twice: %+v", resp.Topics)
	}
	errCode(t, "auto", resp.Topics[0].ErrorCode, nil)
	co := resp.Topics[1]
	errCode(t, "__consumer_offsets", co.ErrorCode, nil)
	if !co.IsInternal || len(co.Partitions) != 50 {
		t.Errorf("__consumer_offsets: internal %v, %d partitions", co.IsInternal, len(co.Partitions))
	}
	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "__consumer_offsets", ConfigNames: []string{"cleanup.policy"}}}
	cfg := send[*kmsg.DescribeConfigsResponse](t, b, dc)
	if len(cfg.Resources) != 1 || len(cfg.Resources[0].Configs) != 1 || cfg.Resources[0].Configs[0].Value == nil || *cfg.Resources[0].Configs[0].Value != "compact" {
		t.Errorf("__consumer_offsets cleanup.policy: %+v", cfg.Resources)
	}
}
