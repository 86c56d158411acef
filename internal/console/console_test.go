package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
	"go.uber.org/goleak"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/console"
	"github.com/gregor-streaming/gregor/internal/ktest"
	"github.com/gregor-streaming/gregor/internal/metrics"
	"github.com/gregor-streaming/gregor/internal/server"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// weirdGroup is a group ID with everything HTML must escape: group IDs
// are free-form (topic names allow only [a-zA-Z0-9._-]).
const weirdGroup = `<script>alert("x")</script> & 'co'`

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// serveConsole serves a console reading kb through in-memory
// connections, as gregor serve wires it.
func serveConsole(t *testing.T, kb *ktest.Broker) string {
	t.Helper()
	srv := kb.Server()
	c := &metrics.Collector{}
	c.SetBroker(kb.B)
	c.SetConns(srv)
	con, err := console.New(console.Options{
		Dial:      func(context.Context) (net.Conn, error) { return srv.DialInternal() },
		Metrics:   metrics.NewRegistry(c),
		Version:   "test-version",
		Listeners: []console.Listener{{Name: "PLAINTEXT", Protocol: "PLAINTEXT", Address: kb.Addr, Advertised: kb.Addr}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(con.Close)
	hs := httptest.NewServer(con)
	t.Cleanup(hs.Close)
	return hs.URL + console.Path
}

func get(t *testing.T, u string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// getJSON fetches page?format=json into v and returns the status.
func getJSON(t *testing.T, page string, v any) int {
	t.Helper()
	sep := "?"
	if strings.Contains(page, "?") {
		sep = "&"
	}
	code, h, body := get(t, page+sep+"format=json")
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("%s: Content-Type %q", page, ct)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("%s: %v\n%s", page, err, body)
	}
	return code
}

// fixture is a broker with two topics, a consumer group with a live
// member and committed offsets, and an empty group with an awkward ID.
//
//	orders: 3 partitions × 10 records, retention.ms=3600000
//	payments: 1 partition, 2 records
//	billing: one member assigned orders 0-2; commits 0→10, 1→4, none on 2
//	weirdGroup: no member; commits payments 0→1
type fixture struct {
	kb   *ktest.Broker
	base string
	// member is billing's member ID.
	member string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	kb := ktest.NewBroker(t, ktest.Set("group.initial.rebalance.delay.ms", "0"))
	retention := "3600000"
	kb.CreateTopic("orders", 3, map[string]*string{"retention.ms": &retention})
	kb.CreateTopic("payments", 1, nil)
	ctx := ctxT(t)
	prod := kb.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var recs []*kgo.Record
	for p := range int32(3) {
		for i := range 10 {
			recs = append(recs, &kgo.Record{Topic: "orders", Partition: p, Value: []byte("order-" + strconv.Itoa(i))})
		}
	}
	recs = append(recs, &kgo.Record{Topic: "payments", Value: []byte("p1")}, &kgo.Record{Topic: "payments", Value: []byte("p2")})
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	assigned := make(chan struct{}, 1)
	member := kb.Client(kgo.ConsumerGroup("billing"), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, a map[string][]int32) {
			if len(a["orders"]) == 3 {
				select {
				case assigned <- struct{}{}:
				default:
				}
			}
		}))
	// The client joins as it polls.
	pollCtx, stopPolling := context.WithCancel(context.Background())
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for pollCtx.Err() == nil {
			member.PollFetches(pollCtx)
		}
	}()
	t.Cleanup(func() { stopPolling(); <-polled })
	select {
	case <-assigned:
	case <-ctx.Done():
		t.Fatal("billing's member was not assigned orders 0-2")
	}
	var commitErr error
	member.CommitOffsetsSync(ctx, map[string]map[int32]kgo.EpochOffset{"orders": {0: {Epoch: -1, Offset: 10}, 1: {Epoch: -1, Offset: 4}}},
		func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			commitErr = err
			if err == nil {
				for _, rt := range resp.Topics {
					for _, rp := range rt.Partitions {
						if rp.ErrorCode != 0 {
							commitErr = kerr.ErrorForCode(rp.ErrorCode)
						}
					}
				}
			}
		})
	if commitErr != nil {
		t.Fatalf("billing's commit: %v", commitErr)
	}
	adm := kb.Admin()
	if err := adm.CommitAllOffsets(ctx, weirdGroup, kadm.OffsetsFromRecords(kgo.Record{Topic: "payments", Partition: 0, Offset: 0})); err != nil {
		t.Fatalf("commit for %q: %v", weirdGroup, err)
	}
	memberID, _ := member.GroupMetadata()
	return &fixture{kb: kb, base: serveConsole(t, kb), member: memberID}
}

// TestFixture runs the pages' tests against one broker (fixture).
func TestFixture(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *fixture)
	}{
		{"Overview", testOverview},
		{"Topics", testTopics},
		{"TopicPage", testTopicPage},
		{"Groups", testGroups},
		{"GroupPage", testGroupPage},
		{"HTMLPages", testHTMLPages},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

func testOverview(t *testing.T, f *fixture) {
	var o console.Overview
	if code := getJSON(t, f.base, &o); code != 200 {
		t.Fatalf("status %d", code)
	}
	md, err := f.kb.Admin().BrokerMetadata(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if o.ClusterID == "" || o.ClusterID != md.Cluster {
		t.Errorf("cluster ID %q, want %q", o.ClusterID, md.Cluster)
	}
	if len(o.Brokers) != 1 || !o.Brokers[0].Controller || net.JoinHostPort(o.Brokers[0].Host, strconv.Itoa(int(o.Brokers[0].Port))) != f.kb.Addr {
		t.Errorf("brokers %+v, want the one at %s, controller", o.Brokers, f.kb.Addr)
	}
	if len(o.Listeners) != 1 || o.Listeners[0].Protocol != "PLAINTEXT" || o.Version != "test-version" {
		t.Errorf("listeners %+v version %q", o.Listeners, o.Version)
	}
	// orders, payments and __consumer_offsets.
	if o.Topics-o.InternalTopics != 2 || o.Partitions < 4 {
		t.Errorf("topics %d (%d internal), partitions %d; want 2 user topics and at least 4 partitions", o.Topics, o.InternalTopics, o.Partitions)
	}
	if o.Groups != 2 || o.GroupsError != "" {
		t.Errorf("groups %d (%s), want 2", o.Groups, o.GroupsError)
	}
	if o.Traffic == nil || o.Traffic.BytesInTotal <= 0 {
		t.Errorf("traffic %+v, want the bytes produced", o.Traffic)
	}
	if o.UptimeSeconds < 0 || o.Started.IsZero() {
		t.Errorf("started %v, uptime %v", o.Started, o.UptimeSeconds)
	}
}

func testTopics(t *testing.T, f *fixture) {
	var l console.TopicList
	if code := getJSON(t, f.base+"topics", &l); code != 200 {
		t.Fatalf("status %d", code)
	}
	if l.OffsetsError != "" || l.SizesError != "" {
		t.Fatalf("errors: %q %q", l.OffsetsError, l.SizesError)
	}
	byName := map[string]console.TopicRow{}
	var names []string
	for _, r := range l.Topics {
		byName[r.Name] = r
		names = append(names, r.Name)
	}
	if !slices.IsSorted(names) {
		t.Errorf("topics not sorted: %v", names)
	}
	orders, payments := byName["orders"], byName["payments"]
	if orders.Partitions != 3 || orders.ReplicationFactor != 1 || orders.HighWatermarks != 30 || orders.Records != 30 || orders.SizeBytes <= 0 || orders.Internal || orders.ID == "" {
		t.Errorf("orders: %+v", orders)
	}
	if payments.Partitions != 1 || payments.HighWatermarks != 2 || payments.Records != 2 {
		t.Errorf("payments: %+v", payments)
	}
	if co, ok := byName["__consumer_offsets"]; ok && !co.Internal {
		t.Errorf("__consumer_offsets not internal: %+v", co)
	}

	for _, tc := range []struct {
		filter string
		want   []string
	}{
		{"ORD", []string{"orders"}},
		{"ay", []string{"payments"}},
		{"nothing-like-it", nil},
	} {
		var l console.TopicList
		getJSON(t, f.base+"topics?filter="+url.QueryEscape(tc.filter), &l)
		var got []string
		for _, r := range l.Topics {
			got = append(got, r.Name)
		}
		if l.Filter != tc.filter || !slices.Equal(got, tc.want) {
			t.Errorf("filter %q: %v (filter %q), want %v", tc.filter, got, l.Filter, tc.want)
		}
	}
}

func testTopicPage(t *testing.T, f *fixture) {
	var tp console.Topic
	if code := getJSON(t, f.base+"topics/orders", &tp); code != 200 {
		t.Fatalf("status %d", code)
	}
	if tp.Name != "orders" || len(tp.Partitions) != 3 || tp.Records != 30 || tp.ReplicationFactor != 1 {
		t.Fatalf("orders: %+v", tp)
	}
	for i, p := range tp.Partitions {
		if p.Partition != int32(i) || p.Leader != 0 || p.LeaderEpoch < 0 || p.LogStartOffset != 0 || p.HighWatermark != 10 ||
			p.SizeBytes <= 0 || !slices.Equal(p.Replicas, []int32{0}) || !slices.Equal(p.ISR, []int32{0}) || p.Error != "" {
			t.Errorf("partition %d: %+v", i, p)
		}
	}
	found := false
	for _, c := range tp.Configs {
		if c.Source == "default" {
			t.Errorf("default config listed: %+v", c)
		}
		if c.Name == "retention.ms" {
			found = c.Value != nil && *c.Value == "3600000" && c.Source == "topic"
		}
	}
	if !found || tp.ConfigsError != "" {
		t.Errorf("configs %+v (%s), want retention.ms=3600000 from the topic", tp.Configs, tp.ConfigsError)
	}

	var e map[string]string
	if code := getJSON(t, f.base+"topics/no-such-topic", &e); code != 404 || !strings.Contains(e["error"], "no-such-topic") {
		t.Errorf("unknown topic: %d %v", code, e)
	}
	if code, _, body := get(t, f.base+"topics/no-such-topic"); code != 404 || !strings.Contains(body, "does not exist") {
		t.Errorf("unknown topic page: %d\n%s", code, body)
	}
	// Asking did not create it (auto.create.topics.enable is on).
	if md, err := f.kb.Admin().ListTopics(ctxT(t)); err != nil || md.Has("no-such-topic") {
		t.Errorf("the console created the topic it was asked about (%v)", err)
	}
}

func testGroups(t *testing.T, f *fixture) {
	var l console.GroupList
	if code := getJSON(t, f.base+"groups", &l); code != 200 {
		t.Fatalf("status %d", code)
	}
	rows := map[string]console.GroupRow{}
	for _, g := range l.Groups {
		rows[g.Group] = g
	}
	if b := rows["billing"]; b.State != "Stable" || b.ProtocolType != "consumer" || b.Protocol == "" || b.Members != 1 || b.Lag != 16 || b.Error != "" {
		t.Errorf("billing: %+v; want Stable, consumer, 1 member, lag 0+6+10", b)
	}
	if w := rows[weirdGroup]; w.State != "Empty" || w.Members != 0 || w.Lag != 1 {
		t.Errorf("%s: %+v; want Empty, lag 1", weirdGroup, w)
	}
	var filtered console.GroupList
	getJSON(t, f.base+"groups?filter=BILL", &filtered)
	if len(filtered.Groups) != 1 || filtered.Groups[0].Group != "billing" {
		t.Errorf("filter BILL: %+v", filtered.Groups)
	}
}

func testGroupPage(t *testing.T, f *fixture) {
	var g console.Group
	if code := getJSON(t, f.base+"group?id=billing", &g); code != 200 {
		t.Fatalf("status %d", code)
	}
	if g.Group != "billing" || g.State != "Stable" || g.Lag != 16 || len(g.Members) != 1 {
		t.Fatalf("billing: %+v", g)
	}
	m := g.Members[0]
	if m.MemberID != f.member || len(m.Assigned) != 1 || m.Assigned[0].Topic != "orders" || !slices.Equal(m.Assigned[0].Partitions, []int32{0, 1, 2}) {
		t.Errorf("member %+v, want %s with orders 0, 1, 2", m, f.member)
	}
	want := []console.Offset{
		{Topic: "orders", Partition: 0, Committed: 10, LogEndOffset: 10, Lag: 0, MemberID: f.member},
		{Topic: "orders", Partition: 1, Committed: 4, LogEndOffset: 10, Lag: 6, MemberID: f.member},
		{Topic: "orders", Partition: 2, Committed: -1, LogEndOffset: 10, Lag: 10, MemberID: f.member},
	}
	if !slices.Equal(g.Offsets, want) {
		t.Errorf("offsets\n got %+v\nwant %+v", g.Offsets, want)
	}

	var w console.Group
	if code := getJSON(t, f.base+"group?id="+url.QueryEscape(weirdGroup), &w); code != 200 || w.Group != weirdGroup || w.State != "Empty" {
		t.Fatalf("%s: %d %+v", weirdGroup, code, w)
	}
	if len(w.Offsets) != 1 || w.Offsets[0] != (console.Offset{Topic: "payments", Partition: 0, Committed: 1, LogEndOffset: 2, Lag: 1}) {
		t.Errorf("%s offsets: %+v", weirdGroup, w.Offsets)
	}

	var e map[string]string
	if code := getJSON(t, f.base+"group?id=no-such-group", &e); code != 404 || e["error"] == "" {
		t.Errorf("unknown group: %d %v", code, e)
	}
	// Without an ID: the list.
	resp, err := http.Get(f.base + "group")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != console.Path+"groups" {
		t.Errorf("/console/group without id went to %s", resp.Request.URL.Path)
	}
}

// TestHTMLPages: every page renders, names the things it shows, and
// escapes them; nothing is scripted or fetched from elsewhere.
func testHTMLPages(t *testing.T, f *fixture) {
	escaped := `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;co&#39;`
	for _, tc := range []struct {
		page string
		want []string
	}{
		{"", []string{"Cluster", "Brokers", "PLAINTEXT", "test-version"}},
		{"topics", []string{`href="/console/topics/orders"`, "payments", "internal"}},
		{"topics?filter=pay", []string{"payments", `value="pay"`}},
		{"topics/orders", []string{"<h1>orders", "retention.ms", "3600000"}},
		{"groups", []string{"billing", "Stable", escaped, `href="/console/group?id=%3cscript%3ealert%28%22x%22%29%3c%2fscript%3e%20%26%20%27co%27"`}},
		{"group?id=billing", []string{"billing", f.member, `href="/console/topics/orders"`}},
		{"group?id=" + url.QueryEscape(weirdGroup), []string{"<h1>" + escaped, "payments"}},
		{"security", []string{"Authorizer disabled"}},
	} {
		code, h, body := get(t, f.base+tc.page)
		if code != 200 {
			t.Errorf("%s: status %d\n%s", tc.page, code, body)
			continue
		}
		if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tc.page, ct)
		}
		if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: Content-Security-Policy %q", tc.page, csp)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("%s: no %q in\n%s", tc.page, w, body)
			}
		}
		if strings.Contains(body, "<script") || strings.Contains(body, "http://") || strings.Contains(body, "https://") {
			t.Errorf("%s: a script or an outside address:\n%s", tc.page, body)
		}
	}
	code, h, css := get(t, f.base+"static/console.css")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/css") || !strings.Contains(css, "table") {
		t.Errorf("console.css: %d %q", code, h.Get("Content-Type"))
	}
	if code, _, _ := get(t, f.base+"no-such-page"); code != 404 {
		t.Errorf("unknown page: %d, want 404", code)
	}
	resp, err := http.Post(f.base+"topics", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", resp.StatusCode)
	}
}

// TestSecurityWithoutAuthorizer: SCRAM users (names and mechanisms, no
// secrets) and quotas are listed; the ACLs say the authorizer is off.
func TestSecurityWithoutAuthorizer(t *testing.T) {
	kb := ktest.NewBroker(t)
	ctx := ctxT(t)
	adm := kb.Admin()
	if _, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{
		{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-secret"},
		{User: "alice", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "alice-secret"},
		{User: "bob", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "bob-secret"},
	}); err != nil {
		t.Fatal(err)
	}
	name := "alice"
	if res, err := adm.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{{
		Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &name}},
		Ops:    []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1048576}},
	}}); err != nil || res[0].Err != nil {
		t.Fatalf("quota: %v %v", err, res)
	}
	base := serveConsole(t, kb)
	var s console.Security
	code, _, raw := get(t, base+"security?format=json")
	if err := json.Unmarshal([]byte(raw), &s); code != 200 || err != nil {
		t.Fatalf("%d %v\n%s", code, err, raw)
	}
	if s.AuthorizerEnabled || len(s.ACLs) != 0 || s.ACLsError != "" {
		t.Errorf("ACLs: %+v", s)
	}
	wantUsers := []console.ScramUser{{User: "alice", Mechanisms: []string{"SCRAM-SHA-256", "SCRAM-SHA-512"}}, {User: "bob", Mechanisms: []string{"SCRAM-SHA-512"}}}
	if len(s.ScramUsers) != 2 || !slices.Equal(s.ScramUsers[0].Mechanisms, wantUsers[0].Mechanisms) || s.ScramUsers[0].User != "alice" ||
		s.ScramUsers[1].User != "bob" || !slices.Equal(s.ScramUsers[1].Mechanisms, wantUsers[1].Mechanisms) {
		t.Errorf("SCRAM users %+v, want %+v", s.ScramUsers, wantUsers)
	}
	if len(s.Quotas) != 1 || s.Quotas[0].Entity != "user=alice" || len(s.Quotas[0].Values) != 1 || s.Quotas[0].Values[0] != (console.QuotaValue{Key: "producer_byte_rate", Value: 1048576}) {
		t.Errorf("quotas %+v", s.Quotas)
	}
	for _, secret := range []string{"secret", "salt", "iterations", "4096"} {
		if strings.Contains(raw, secret) {
			t.Errorf("the security page shows %q:\n%s", secret, raw)
		}
	}
}

// saslBroker is a broker whose only listener is SASL_PLAINTEXT, with the
// authorizer on, no ACLs, and admin as its one super user. Users admin,
// alice and Internal:console (a name, not a principal type) exist.
func saslBroker(t *testing.T, trust bool) *ktest.Broker {
	t.Helper()
	kb := ktest.NewBroker(t,
		ktest.Set("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
		ktest.Set("sasl.enabled.mechanisms", "SCRAM-SHA-256,PLAIN"),
		ktest.Set("authorizer.class.name", config.StandardAuthorizer),
		ktest.Set("super.users", "User:admin"),
	)
	for _, u := range []string{"admin", "alice", server.InternalPrincipal} {
		if _, err := kb.B.EnsureScramUser(auth.ScramSHA256, u, u+"-secret"); err != nil {
			t.Fatal(err)
		}
	}
	if trust {
		// As gregor serve does when the console is on; nothing has been
		// served yet.
		if err := kb.B.TrustInternalPrincipal(server.InternalPrincipal); err != nil {
			t.Fatal(err)
		}
	}
	return kb
}

// plainAuthzid is PLAIN authenticating as user but asking to act as
// authzid.
func plainAuthzid(authzid, user, pass string) sasl.Mechanism {
	return plain.Auth{Zid: authzid, User: user, Pass: pass}.AsMechanism()
}

func scramClient(kb *ktest.Broker, user string) *kgo.Client {
	return kb.Client(kgo.SASL(scram.Auth{User: user, Pass: user + "-secret"}.AsSha256Mechanism()))
}

// TestSASLOnlyBroker: the console reads a broker whose only listener
// wants SASL and whose authorizer has no ACLs, without credentials:
// its in-memory connections are the internal principal, which the
// broker trusts. A network client cannot be that principal, whatever
// user name it authenticates with.
func TestSASLOnlyBroker(t *testing.T) {
	kb := saslBroker(t, true)
	ctx := ctxT(t)
	admin := kadm.NewClient(scramClient(kb, "admin"))
	if _, err := admin.CreateTopic(ctx, 2, 1, nil, "secured"); err != nil {
		t.Fatal(err)
	}
	if res, err := admin.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").AllowHosts().Topics("secured").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil || res[0].Err != nil {
		t.Fatalf("create ACL: %v %v", err, res)
	}
	base := serveConsole(t, kb)

	var l console.TopicList
	if code := getJSON(t, base+"topics", &l); code != 200 || !slices.ContainsFunc(l.Topics, func(r console.TopicRow) bool { return r.Name == "secured" && r.Partitions == 2 }) {
		t.Fatalf("topics: %d %+v", code, l)
	}
	var tp console.Topic
	if code := getJSON(t, base+"topics/secured", &tp); code != 200 || len(tp.Partitions) != 2 || tp.ConfigsError != "" || tp.SizesError != "" || tp.OffsetsError != "" {
		t.Fatalf("topic: %d %+v", code, tp)
	}
	var s console.Security
	getJSON(t, base+"security", &s)
	wantACL := console.ACL{Principal: "User:alice", Host: "*", ResourceType: "TOPIC", ResourceName: "secured", PatternType: "LITERAL", Operation: "READ", Permission: "ALLOW"}
	if !s.AuthorizerEnabled || s.ACLsError != "" || !slices.Equal(s.ACLs, []console.ACL{wantACL}) {
		t.Errorf("ACLs: %+v", s)
	}
	if len(s.ScramUsers) != 3 || s.ScramError != "" || s.QuotasError != "" {
		t.Errorf("SCRAM users %+v (%s), quotas error %q", s.ScramUsers, s.ScramError, s.QuotasError)
	}
	var o console.Overview
	if code := getJSON(t, base, &o); code != 200 || o.GroupsError != "" {
		t.Errorf("overview: %d %+v", code, o)
	}
	if code, _, body := get(t, base+"security"); code != 200 || !strings.Contains(body, "User:alice") || strings.Contains(body, "Authorizer disabled") {
		t.Errorf("security page: %d\n%s", code, body)
	}

	// A network client whose SCRAM user is named like the principal is
	// User:Internal:console, which is nobody in particular.
	impostor := kadm.NewClient(scramClient(kb, server.InternalPrincipal))
	res, err := impostor.DescribeACLs(ctx, kadm.NewACLs().AnyResource().Allow().AllowHosts().Operations().ResourcePatternType(kadm.ACLPatternAny))
	if err == nil && len(res) > 0 {
		err = res[0].Err
	}
	if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Errorf("DescribeAcls as SCRAM user %q: %v, want CLUSTER_AUTHORIZATION_FAILED", server.InternalPrincipal, err)
	}
	if md, err := impostor.ListTopics(ctx); err != nil || md.Has("secured") {
		t.Errorf("SCRAM user %q sees topic secured (%v)", server.InternalPrincipal, err)
	}
	// PLAIN with the principal as the authorization ID is refused; the
	// same user without one is let in.
	if err := kb.Client(kgo.SASL(plainAuthzid("", "alice", "alice-secret"))).Ping(ctx); err != nil {
		t.Fatalf("PLAIN as alice: %v", err)
	}
	plainImpostor := kb.Client(kgo.SASL(plainAuthzid(server.InternalPrincipal, "alice", "alice-secret")))
	if err := plainImpostor.Ping(ctx); err == nil {
		t.Errorf("PLAIN with authorization ID %q authenticated", server.InternalPrincipal)
	}
	// And a principal of type User can never be trusted this way.
	for _, p := range []string{"User:admin", "user:x", "Internal", ":x", "Internal:"} {
		if err := kb.B.TrustInternalPrincipal(p); err == nil {
			t.Errorf("TrustInternalPrincipal(%q) accepted", p)
		}
	}
}

// TestUntrustedInternalPrincipal: the internal principal is nobody to
// the authorizer until the broker trusts it.
func TestUntrustedInternalPrincipal(t *testing.T) {
	kb := saslBroker(t, false)
	base := serveConsole(t, kb)
	var s console.Security
	if code := getJSON(t, base+"security", &s); code != 200 || !s.AuthorizerEnabled || !strings.Contains(s.ACLsError, "CLUSTER_AUTHORIZATION_FAILED") {
		t.Errorf("security: %d %+v, want CLUSTER_AUTHORIZATION_FAILED", code, s)
	}
}

// TestConsoleRefusesOtherHosts: pages are served only to requests that
// name the console by an IP address, localhost or an allowed name, and
// not to another site's page: a page at evil.example whose name now
// points at 127.0.0.1 (DNS rebinding) cannot read the console.
func TestConsoleRefusesOtherHosts(t *testing.T) {
	kb := ktest.NewBroker(t)
	srv := kb.Server()
	con, err := console.New(console.Options{
		Dial:         func(context.Context) (net.Conn, error) { return srv.DialInternal() },
		AllowedHosts: []string{"kafka-admin.example.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(con.Close)
	hs := httptest.NewServer(con)
	t.Cleanup(hs.Close)
	for _, c := range []struct {
		host, site string
		want       int
	}{
		{"", "", http.StatusOK}, // the test server's own 127.0.0.1:port
		{"localhost:9644", "", http.StatusOK},
		{"[::1]:9644", "", http.StatusOK},
		{"Kafka-Admin.example.com:9644", "", http.StatusOK},
		{"evil.example:9644", "", http.StatusMisdirectedRequest},
		{"127.0.0.1.evil.example", "", http.StatusMisdirectedRequest},
		{"", "cross-site", http.StatusForbidden},
		{"", "same-origin", http.StatusOK},
	} {
		req, _ := http.NewRequest("GET", hs.URL+console.Path+"security?format=json", nil)
		if c.host != "" {
			req.Host = c.host
		}
		if c.site != "" {
			req.Header.Set("Sec-Fetch-Site", c.site)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("Host %q, Sec-Fetch-Site %q: %d, want %d", c.host, c.site, resp.StatusCode, c.want)
		}
	}
}

// TestConsumerGroupPages: a KIP-848 consumer group, which
// DescribeGroups calls not found, is listed and shown through
// ConsumerGroupDescribe.
func TestConsumerGroupPages(t *testing.T) {
	kb := ktest.NewBroker(t, ktest.Set("group.consumer.heartbeat.interval.ms", "100"))
	kb.CreateTopic("orders", 2, nil)
	ctx := ctxT(t)
	prod := kb.Client(kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "orders", Value: []byte("a")}, &kgo.Record{Topic: "orders", Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	member := kb.Client(kgo.ConsumerGroup("next"), kgo.ConsumeTopics("orders"), kgo.ServerSideBalancer(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	for got := 0; got < 2; {
		fs := member.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal("the consumer group member consumed nothing")
		}
		got += fs.NumRecords()
	}
	if err := member.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	base := serveConsole(t, kb)
	var g console.Group
	for deadline := time.Now().Add(10 * time.Second); ; {
		if code := getJSON(t, base+"group?id=next", &g); code != 200 {
			t.Fatalf("group page: %d", code)
		}
		if g.State == "Stable" && len(g.Members) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if g.ProtocolType != "consumer" || g.Protocol != "uniform" || len(g.Members) != 1 || len(g.Members[0].Assigned) != 1 || len(g.Offsets) != 2 || g.Lag != 0 {
		t.Fatalf("group page: %+v", g)
	}
	var l console.GroupList
	if code := getJSON(t, base+"groups", &l); code != 200 || len(l.Groups) != 1 || l.Groups[0].State != "Stable" || l.Groups[0].Members != 1 || l.Groups[0].Error != "" {
		t.Fatalf("groups page: %d %+v", code, l)
	}
}
