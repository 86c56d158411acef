package broker_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/batch"
	"github.com/gregor-streaming/gregor/internal/broker"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/vfs"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// FuzzServe decodes arbitrary bytes as the body of every registered API
// key and version, exactly as the server does, and when they decode runs
// the handler against a live broker (on a MemFS). It fails when a handler
// panics (Serve recovers and logs "handler panic": the logger here turns
// that into a failure), when respond is called more than once or with a
// response of another key or version, when a response does not encode
// (the server encodes on the connection's writer goroutine, where a panic
// takes the process down), and when a parked request is still unanswered
// after the broker shut down.
//
// The corpus is seeded with a realistic request of every key at every
// version it is registered for; testdata/fuzz/FuzzServe holds the inputs
// that found bugs. Run it with
//
//	go test ./internal/broker -run '^$' -fuzz FuzzServe -fuzztime 5m
//
// The harness bounds what one input may cost, not what it may do: fetch
// waits at most 20 ms, rebalances 200 ms, and topics get at most 8
// partitions (a real client may ask for 100,000, which is slow on any
// disk, not wrong).
func FuzzServe(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.key, s.version, s.body)
	}
	f.Cleanup(func() { fuzzEnv.close(f) })
	f.Fuzz(func(t *testing.T, key, version int16, body []byte) {
		h := fuzzEnv.get(t)
		min, max, ok := h.b.Versions(key)
		if !ok {
			return // the server closes the connection
		}
		req := &wire.Request{
			Client: &wire.Client{Remote: "fuzz", Close: func() { h.closes.Add(1) }},
			Key:    key, Version: version, CorrelationID: 7, ClientID: "fuzz", Received: time.Now(),
		}
		kreq := kmsg.RequestForKey(key)
		if version < min || version > max {
			if key != wire.ApiVersionsKey {
				return // the server closes the connection
			}
			kreq.SetVersion(0)
			req.Version, req.UnsupportedVersion = 0, true
		} else {
			kreq.SetVersion(version)
			// The server decodes from the frame it owns; Produce
			// aliases it.
			buf := bytes.Clone(body)
			var err error
			if p, ok := kreq.(*kmsg.ProduceRequest); ok {
				err = p.UnsafeReadFrom(buf)
			} else {
				err = kreq.ReadFrom(buf)
			}
			if err != nil {
				return // the server closes the connection
			}
		}
		bound(kreq)
		req.Body = kreq
		c := &call{key: key, version: req.Version, body: body, done: make(chan struct{})}
		h.b.Serve(context.Background(), req, c.respond)
		if p := h.panicked.Swap(nil); p != nil {
			t.Fatalf("%s v%d: %s", kmsg.NameForKey(key), req.Version, *p)
		}
		select {
		case <-c.done:
		case <-time.After(250 * time.Millisecond):
			// Parked (a join waiting for members, a sync for its
			// leader): it must be answered by shutdown at the latest.
			h.mu.Lock()
			h.pending = append(h.pending, c)
			h.mu.Unlock()
		}
		if err := c.err(); err != nil {
			t.Fatal(err)
		}
	})
}

// call is one served request and what its respond saw.
type call struct {
	key, version int16
	body         []byte
	n            atomic.Int32
	done         chan struct{}
	mu           sync.Mutex
	problem      string
}

func (c *call) respond(r kmsg.Response) {
	if c.n.Add(1) != 1 {
		c.fail("respond called %d times", c.n.Load())
		return
	}
	defer close(c.done)
	if r == nil {
		return
	}
	if r.Key() != c.key || r.GetVersion() != c.version {
		c.fail("response is %s v%d", kmsg.NameForKey(r.Key()), r.GetVersion())
		return
	}
	defer func() {
		if v := recover(); v != nil {
			c.fail("encoding the response panicked: %v", v)
		}
	}()
	// As the server's writer does: splice, then release pooled memory
	// and the segment files of sendfile spans.
	wire.AppendResponseSegments(nil, 7, r, nil)
	if rel, ok := r.(wire.Releaser); ok {
		rel.Release()
	}
}

func (c *call) fail(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.problem == "" {
		c.problem = fmt.Sprintf(format, args...)
	}
}

func (c *call) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.problem == "" {
		return nil
	}
	return fmt.Errorf("%s v%d (body %x): %s", kmsg.NameForKey(c.key), c.version, c.body, c.problem)
}

// bound caps what one input may make the broker wait for or allocate
// on disk; see FuzzServe.
func bound(r kmsg.Request) {
	switch r := r.(type) {
	case *kmsg.FetchRequest:
		r.MaxWaitMillis = min(r.MaxWaitMillis, 20)
	case *kmsg.JoinGroupRequest:
		r.RebalanceTimeoutMillis = min(r.RebalanceTimeoutMillis, 200)
	case *kmsg.CreateTopicsRequest:
		for i := range r.Topics {
			r.Topics[i].NumPartitions = min(r.Topics[i].NumPartitions, 8)
			if len(r.Topics[i].ReplicaAssignment) > 8 {
				r.Topics[i].ReplicaAssignment = r.Topics[i].ReplicaAssignment[:8]
			}
		}
	case *kmsg.CreatePartitionsRequest:
		for i := range r.Topics {
			r.Topics[i].Count = min(r.Topics[i].Count, 8)
			if len(r.Topics[i].Assignment) > 8 {
				r.Topics[i].Assignment = r.Topics[i].Assignment[:8]
			}
		}
	}
}

// fuzzEnv is the broker the fuzz function runs against: one per
// process, replaced every fuzzBrokerLife inputs so state (topics, groups)
// does not grow without bound and parked requests are checked.
var fuzzEnv fuzzBroker

const fuzzBrokerLife = 500

type fuzzBroker struct {
	mu sync.Mutex
	b  *broker.Broker
	// n counts inputs served by b.
	n        int
	closes   atomic.Int64
	panicked atomic.Pointer[string]
	// pending are requests not answered within the wait.
	pending []*call
}

func (h *fuzzBroker) get(t *testing.T) *fuzzBroker {
	t.Helper()
	h.mu.Lock()
	if h.b != nil && h.n >= fuzzBrokerLife {
		h.mu.Unlock()
		h.close(t)
		h.mu.Lock()
	}
	defer h.mu.Unlock()
	if h.b == nil {
		h.open(t)
	}
	h.n++
	return h
}

func (h *fuzzBroker) open(t testing.TB) {
	props := map[string]string{
		"group.initial.rebalance.delay.ms": "0",
		"num.partitions":                   "2",
		// Every handler's authorization runs; bindings the inputs
		// create (CreateAcls) may refuse what follows, and nothing
		// is refused until one does.
		"authorizer.class.name":          "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"allow.everyone.if.no.acl.found": "true",
	}
	cfg, _, err := config.NewBroker(props)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(&panicCatcher{h: slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}), caught: &h.panicked})
	b, err := broker.Open(broker.Options{Config: cfg, DataDir: "/data", FS: vfs.NewMem(), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	b.SetAdvertised("127.0.0.1", 9092)
	h.b, h.n, h.pending = b, 0, nil
	// A topic with data, so fetches, list offsets and deletes have
	// something to act on.
	serveSync(t, b, &kmsg.CreateTopicsRequest{Version: 7, TimeoutMillis: 1000, Topics: []kmsg.CreateTopicsRequestTopic{
		{Topic: "fuzz", NumPartitions: 2, ReplicationFactor: 1},
	}})
	p := sampleProduce()
	p.Version = 9
	serveSync(t, b, p)
}

// close shuts the broker down and checks every parked request was
// answered exactly once.
func (h *fuzzBroker) close(t testing.TB) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.b == nil {
		return
	}
	h.b.Drain()
	if err := h.b.Close(); err != nil {
		t.Logf("closing the fuzz broker: %v", err)
	}
	for _, c := range h.pending {
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
			t.Errorf("%s v%d (body %x) was never answered, even by shutdown", kmsg.NameForKey(c.key), c.version, c.body)
		}
		if err := c.err(); err != nil {
			t.Error(err)
		}
	}
	if p := h.panicked.Swap(nil); p != nil {
		t.Errorf("handler panic: %s", *p)
	}
	h.b, h.pending = nil, nil
}

// serveSync serves one request at its set version and waits for the
// answer.
func serveSync(t testing.TB, b *broker.Broker, r kmsg.Request) kmsg.Response {
	t.Helper()
	done := make(chan kmsg.Response, 1)
	b.Serve(context.Background(), &wire.Request{
		Client: &wire.Client{Remote: "fuzz", Close: func() {}},
		Key:    r.Key(), Version: r.GetVersion(), Body: r, Received: time.Now(),
	}, func(resp kmsg.Response) { done <- resp })
	select {
	case resp := <-done:
		return resp
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no answer", kmsg.NameForKey(r.Key()))
		return nil
	}
}

// panicCatcher records Serve's "handler panic" log records.
type panicCatcher struct {
	h      slog.Handler
	caught *atomic.Pointer[string]
}

func (p *panicCatcher) Enabled(ctx context.Context, l slog.Level) bool { return p.h.Enabled(ctx, l) }

func (p *panicCatcher) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == "handler panic" {
		var b bytes.Buffer
		r.Attrs(func(a slog.Attr) bool {
			fmt.Fprintf(&b, "%s=%v\n", a.Key, a.Value)
			return true
		})
		s := b.String()
		p.caught.CompareAndSwap(nil, &s)
		return nil
	}
	return p.h.Handle(ctx, r)
}

func (p *panicCatcher) WithAttrs(as []slog.Attr) slog.Handler {
	return &panicCatcher{h: p.h.WithAttrs(as), caught: p.caught}
}

func (p *panicCatcher) WithGroup(name string) slog.Handler {
	return &panicCatcher{h: p.h.WithGroup(name), caught: p.caught}
}

type fuzzSeed struct {
	key, version int16
	body         []byte
}

// fuzzSeeds encodes a realistic request of every registered key at every
// registered version.
func fuzzSeeds(tb testing.TB) []fuzzSeed {
	b, err := broker.Open(broker.Options{DataDir: "/data", FS: vfs.NewMem(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close()
	samples := sampleRequests()
	var seeds []fuzzSeed
	for key := int16(0); key < 100; key++ {
		min, max, ok := b.Versions(key)
		if !ok {
			continue
		}
		r, ok := samples[key]
		if !ok {
			r = kmsg.RequestForKey(key)
		}
		for v := min; v <= max; v++ {
			r.SetVersion(v)
			seeds = append(seeds, fuzzSeed{key, v, r.AppendTo(nil)})
		}
	}
	// KIP-511: an ApiVersions above the supported range.
	seeds = append(seeds, fuzzSeed{wire.ApiVersionsKey, 99, nil})
	return seeds
}

func sampleProduce() *kmsg.ProduceRequest {
	bb := batch.NewBuilder(batch.CodecNone)
	bb.Add(batch.Record{Key: []byte("k"), Value: []byte("v"), Timestamp: time.Now().UnixMilli(),
		Headers: []batch.RecordHeader{{Key: "h", Value: []byte("1")}}})
	records, _ := bb.Build()
	r := kmsg.NewPtrProduceRequest()
	r.Acks = -1
	r.TimeoutMillis = 1000
	t := kmsg.NewProduceRequestTopic()
	t.Topic = "fuzz"
	p := kmsg.NewProduceRequestTopicPartition()
	p.Records = records
	t.Partitions = append(t.Partitions, p)
	r.Topics = append(r.Topics, t)
	return r
}

// sampleRequests returns a request with realistic fields for each key
// Gregor serves; keys without one are seeded with their zero request.
func sampleRequests() map[int16]kmsg.Request {
	str := kmsg.StringPtr
	m := map[int16]kmsg.Request{}
	add := func(r kmsg.Request) { m[r.Key()] = r }

	add(sampleProduce())

	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID = -1
	fetch.MaxWaitMillis = 10
	fetch.MinBytes = 1
	fetch.MaxBytes = 1 << 20
	fetch.SessionEpoch = -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "fuzz"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	fetch.Topics = append(fetch.Topics, ft)
	fetch.ForgottenTopics = []kmsg.FetchRequestForgottenTopic{{Topic: "gone", Partitions: []int32{1}}}
	add(fetch)

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "fuzz"
	for _, ts := range []int64{-1, -2, -3, time.Now().UnixMilli()} {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Timestamp = ts
		lt.Partitions = append(lt.Partitions, lp)
	}
	lo.Topics = append(lo.Topics, lt)
	add(lo)

	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: str("fuzz")}, {Topic: str("fuzz-auto")}}
	md.AllowAutoTopicCreation = true
	md.IncludeTopicAuthorizedOperations = true
	add(md)

	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group = "g"
	oc.Generation = -1
	oc.MemberID = ""
	oct := kmsg.NewOffsetCommitRequestTopic()
	oct.Topic = "fuzz"
	ocp := kmsg.NewOffsetCommitRequestTopicPartition()
	ocp.Offset = 1
	ocp.Metadata = str("meta")
	oct.Partitions = append(oct.Partitions, ocp)
	oc.Topics = append(oc.Topics, oct)
	add(oc)

	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "g"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "fuzz", Partitions: []int32{0, 1}}}
	of.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "g", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "fuzz", Partitions: []int32{0}}}}}
	add(of)

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	fc.CoordinatorKeys = []string{"g", "h"}
	add(fc)

	jg := kmsg.NewPtrJoinGroupRequest()
	jg.Group = "g"
	jg.SessionTimeoutMillis = 10000
	jg.RebalanceTimeoutMillis = 100
	jg.ProtocolType = "consumer"
	jg.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: []byte{0, 1, 0, 0, 0, 1, 0, 4, 'f', 'u', 'z', 'z', 0, 0, 0, 0}}}
	add(jg)

	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.Generation, hb.MemberID = "g", 1, "m"
	add(hb)

	lg := kmsg.NewPtrLeaveGroupRequest()
	lg.Group, lg.MemberID = "g", "m"
	lg.Members = []kmsg.LeaveGroupRequestMember{{MemberID: "m", Reason: str("bye")}}
	add(lg)

	sg := kmsg.NewPtrSyncGroupRequest()
	sg.Group, sg.Generation, sg.MemberID = "g", 1, "m"
	sg.ProtocolType, sg.Protocol = str("consumer"), str("range")
	sg.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: "m", MemberAssignment: []byte{0, 1, 0, 0, 0, 0}}}
	add(sg)

	dg := kmsg.NewPtrDescribeGroupsRequest()
	dg.Groups = []string{"g", "none"}
	add(dg)

	cgh := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	cgh.Group, cgh.MemberID, cgh.RebalanceTimeoutMillis = "cg", "m", 1000
	cgh.SubscribedTopicNames, cgh.SubscribedTopicRegex = []string{"fuzz"}, str("fu.*")
	cgh.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	add(cgh)

	cgd := kmsg.NewPtrConsumerGroupDescribeRequest()
	cgd.Groups = []string{"cg", "g", "none"}
	add(cgd)

	lgs := kmsg.NewPtrListGroupsRequest()
	lgs.StatesFilter = []string{"Stable"}
	add(lgs)

	av := kmsg.NewPtrApiVersionsRequest()
	av.ClientSoftwareName, av.ClientSoftwareVersion = "fuzz", "1.0"
	add(av)

	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.TimeoutMillis = 1000
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "fuzz-new", 2, 1
	ctt.Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "cleanup.policy", Value: str("compact")}, {Name: "retention.ms", Value: str("60000")}}
	ct.Topics = append(ct.Topics, ctt)
	add(ct)

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.TimeoutMillis = 1000
	dt.TopicNames = []string{"fuzz-gone"}
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: str("fuzz-gone")}}
	add(dt)

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.TimeoutMillis = 1000
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: "fuzz", Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 1, Offset: 0}}}}
	add(dr)

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.TransactionTimeoutMillis = 60000
	add(ip)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Resources = []kmsg.DescribeConfigsRequestResource{
		{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "fuzz"},
		{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: "0", ConfigNames: []string{"num.partitions"}},
	}
	dc.IncludeSynonyms, dc.IncludeDocumentation = true, true
	add(dc)

	ac := kmsg.NewPtrAlterConfigsRequest()
	ac.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "fuzz",
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: "retention.ms", Value: str("3600000")}}}}
	add(ac)

	dl := kmsg.NewPtrDescribeLogDirsRequest()
	dl.Topics = []kmsg.DescribeLogDirsRequestTopic{{Topic: "fuzz", Partitions: []int32{0, 1}}}
	add(dl)

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.TimeoutMillis = 1000
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "fuzz", Count: 3}}
	add(cp)

	dgs := kmsg.NewPtrDeleteGroupsRequest()
	dgs.Groups = []string{"g-old"}
	add(dgs)

	iac := kmsg.NewPtrIncrementalAlterConfigsRequest()
	iac.Resources = []kmsg.IncrementalAlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeTopic, ResourceName: "fuzz",
		Configs: []kmsg.IncrementalAlterConfigsRequestResourceConfig{{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpSet, Value: str("7200000")}}}}
	add(iac)

	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g"
	od.Topics = []kmsg.OffsetDeleteRequestTopic{{Topic: "fuzz", Partitions: []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}}}}
	add(od)

	add(kmsg.NewPtrDescribeClusterRequest())
	ca := kmsg.NewPtrCreateACLsRequest()
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationRead, kmsg.ACLOperationWrite} {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceTypeTopic, "fuzz", kmsg.ACLResourcePatternTypePrefixed
		c.Principal, c.Host, c.Operation, c.PermissionType = "User:ANONYMOUS", "*", op, kmsg.ACLPermissionTypeAllow
		ca.Creations = append(ca.Creations, c)
	}
	add(ca)
	da := kmsg.NewPtrDescribeACLsRequest()
	da.ResourceType, da.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeMatch
	da.ResourceName = str("fuzz")
	da.Operation, da.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	add(da)
	dacl := kmsg.NewPtrDeleteACLsRequest()
	df := kmsg.NewDeleteACLsRequestFilter()
	df.ResourceType, df.ResourcePatternType = kmsg.ACLResourceTypeTopic, kmsg.ACLResourcePatternTypeAny
	df.Principal = str("User:ANONYMOUS")
	df.Operation, df.PermissionType = kmsg.ACLOperationWrite, kmsg.ACLPermissionTypeAny
	dacl.Filters = append(dacl.Filters, df)
	add(dacl)
	return m
}
