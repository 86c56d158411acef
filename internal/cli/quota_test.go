package cli

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// quotaRow is a row of quota list, set or delete --json.
type quotaRow struct {
	Entity     string             `json:"entity"`
	Components map[string]*string `json:"components"`
	Key        string             `json:"key"`
	Value      float64            `json:"value"`
	Old        *float64           `json:"old"`
	New        *float64           `json:"new"`
	Status     string             `json:"status"`
	Error      string             `json:"error"`
}

// short renders a listed row as "user=alice, client-id=<default>
// producer_byte_rate=1048576", to compare sets of quotas.
func (r quotaRow) short() string {
	return r.Entity + " " + r.Key + "=" + formatRate(r.Value)
}

// change renders a set or delete row as "KEY OLD->NEW STATUS".
func (r quotaRow) change() string {
	v := func(p *float64) string {
		if p == nil {
			return "-"
		}
		return formatRate(*p)
	}
	return r.Key + " " + v(r.Old) + "->" + v(r.New) + " " + r.Status
}

func formatRate(v float64) string { return quotaValue("", v) }

func quotaShorts(rows []quotaRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.short())
	}
	return out
}

func quotaChanges(rows []quotaRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.change())
	}
	return out
}

// storedQuotas is every quota the broker keeps, read with kadm rather
// than the CLI: "user=alice, client-id=<default> producer_byte_rate=N",
// sorted.
func storedQuotas(t *testing.T, kb *ktest.Broker) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	described, err := kb.Admin().DescribeClientQuotas(ctx, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, q := range described {
		for _, v := range q.Values {
			out = append(out, entityName(q.Entity)+" "+v.Key+"="+formatRate(v.Value))
		}
	}
	slices.Sort(out)
	return out
}

// TestQuotaLifecycle: quotas set on every kind of entity (user, client
// ID, both; named and <default>) reach the broker as kadm reads them,
// are listed with each filter, changed, dry-run and deleted.
func TestQuotaLifecycle(t *testing.T) {
	kb := ktest.NewBroker(t)
	a := kb.Addr
	quota := func(args ...string) string {
		t.Helper()
		return ok(t, a, "", append([]string{"quota"}, args...)...)
	}
	rows := func(args ...string) []quotaRow {
		t.Helper()
		var out []quotaRow
		decode(t, a, "", &out, append([]string{"quota"}, args...)...)
		return out
	}

	if out := quota("list"); out != "ENTITY  KEY  VALUE\n" {
		t.Errorf("quota list with no quotas:\n%s", out)
	}
	if out := quota("list", "--json"); out != "[]\n" {
		t.Errorf("quota list --json with no quotas: %q", out)
	}

	golden(t, "quota_set", quota("set", "--user", "alice", "--producer-byte-rate", "1048576", "--consumer-byte-rate", "2097152"))
	// One key changed, one the same, "User:" dropped.
	if got, want := quotaChanges(rows("set", "--user", "User:alice", "--producer-byte-rate", "524288", "--consumer-byte-rate", "2097152")),
		[]string{"consumer_byte_rate 2097152->2097152 unchanged", "producer_byte_rate 1048576->524288 changed"}; !slices.Equal(got, want) {
		t.Errorf("changing alice's quotas: %v, want %v", got, want)
	}
	for _, args := range [][]string{
		{"--user-default", "--producer-byte-rate", "262144"},
		{"--client-id", "billing", "--consumer-byte-rate", "10000000"},
		{"--client-default", "--producer-byte-rate", "100000"},
		{"--user", "alice", "--client-id", "billing", "--producer-byte-rate", "4194304"},
		{"--client-id", "billing", "--user", "alice", "--consumer-byte-rate", "512"}, // the same entity
		{"--user", "alice", "--client-default", "--consumer-byte-rate", "3145728"},
		{"--user-default", "--client-id", "billing", "--producer-byte-rate", "65536"},
		{"--user-default", "--client-default", "--consumer-byte-rate", "1000"},
	} {
		got := rows(append([]string{"set"}, args...)...)
		if len(got) != 1 || got[0].Status != "added" || got[0].Old != nil {
			t.Errorf("quota set %s: %+v, want one key added", strings.Join(args, " "), got)
		}
	}
	// The broker holds what was asked for: a <default> is a nil name,
	// user and client ID one entity in either order.
	want := []string{
		"client-id=<default> producer_byte_rate=100000",
		"client-id=billing consumer_byte_rate=10000000",
		"user=<default> producer_byte_rate=262144",
		"user=<default>, client-id=<default> consumer_byte_rate=1000",
		"user=<default>, client-id=billing producer_byte_rate=65536",
		"user=alice consumer_byte_rate=2097152",
		"user=alice producer_byte_rate=524288",
		"user=alice, client-id=<default> consumer_byte_rate=3145728",
		"user=alice, client-id=billing consumer_byte_rate=512",
		"user=alice, client-id=billing producer_byte_rate=4194304",
	}
	if got := storedQuotas(t, kb); !slices.Equal(got, want) {
		t.Errorf("the broker's quotas:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	golden(t, "quota_list", quota("list"))

	// --json: exact values, and the components with null for <default>.
	all := rows("list")
	if len(all) != len(want) {
		t.Fatalf("quota list --json: %d rows, want %d", len(all), len(want))
	}
	for _, r := range all {
		if r.Entity == "user=alice, client-id=<default>" {
			c, has := r.Components["client-id"]
			if r.Components["user"] == nil || *r.Components["user"] != "alice" || !has || c != nil || len(r.Components) != 2 || r.Value != 3145728 {
				t.Errorf("quota list --json row: %+v", r)
			}
		}
	}

	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--user", "alice"}, []string{
			"user=alice consumer_byte_rate=2097152", "user=alice producer_byte_rate=524288",
			"user=alice, client-id=<default> consumer_byte_rate=3145728",
			"user=alice, client-id=billing consumer_byte_rate=512", "user=alice, client-id=billing producer_byte_rate=4194304",
		}},
		{[]string{"--user", "alice", "--strict"}, []string{"user=alice consumer_byte_rate=2097152", "user=alice producer_byte_rate=524288"}},
		{[]string{"--user-default", "--strict"}, []string{"user=<default> producer_byte_rate=262144"}},
		{[]string{"--user-default"}, []string{
			"user=<default> producer_byte_rate=262144",
			"user=<default>, client-id=<default> consumer_byte_rate=1000",
			"user=<default>, client-id=billing producer_byte_rate=65536",
		}},
		{[]string{"--client-id", "billing"}, []string{
			"user=<default>, client-id=billing producer_byte_rate=65536",
			"user=alice, client-id=billing consumer_byte_rate=512", "user=alice, client-id=billing producer_byte_rate=4194304",
			"client-id=billing consumer_byte_rate=10000000",
		}},
		{[]string{"--client-default", "--strict"}, []string{"client-id=<default> producer_byte_rate=100000"}},
		{[]string{"--user", "alice", "--client-id", "billing"}, []string{
			"user=alice, client-id=billing consumer_byte_rate=512", "user=alice, client-id=billing producer_byte_rate=4194304",
		}},
		{[]string{"--user-default", "--client-default", "--strict"}, []string{"user=<default>, client-id=<default> consumer_byte_rate=1000"}},
		{[]string{"--user", "bob"}, nil},
	} {
		if got := quotaShorts(rows(append([]string{"list"}, c.args...)...)); !slices.Equal(got, c.want) {
			t.Errorf("quota list %s:\n%s\nwant:\n%s", strings.Join(c.args, " "), strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}

	// A dry run says what would change, and changes nothing.
	if got, want := quotaChanges(rows("set", "--user", "alice", "--producer-byte-rate", "1", "--consumer-byte-rate", "2097152", "--dry-run")),
		[]string{"consumer_byte_rate 2097152->2097152 unchanged", "producer_byte_rate 524288->1 would change"}; !slices.Equal(got, want) {
		t.Errorf("set --dry-run: %v, want %v", got, want)
	}
	if got, want := quotaChanges(rows("set", "--user", "carol", "--producer-byte-rate", "1", "--dry-run")),
		[]string{"producer_byte_rate -->1 would add"}; !slices.Equal(got, want) {
		t.Errorf("set --dry-run of a new entity: %v, want %v", got, want)
	}
	if got, want := quotaChanges(rows("delete", "--user", "alice", "--dry-run")),
		[]string{"consumer_byte_rate 2097152->- would delete", "producer_byte_rate 524288->- would delete"}; !slices.Equal(got, want) {
		t.Errorf("delete --dry-run: %v, want %v", got, want)
	}
	if got := storedQuotas(t, kb); !slices.Equal(got, want) {
		t.Errorf("after the dry runs:\n%s", strings.Join(got, "\n"))
	}

	// Deleting one key keeps the other; deleting both removes the
	// entity; deleting again finds nothing, which is no error.
	golden(t, "quota_delete", quota("delete", "--user", "alice", "--client-id", "billing", "--producer-byte-rate"))
	if got, want := quotaChanges(rows("delete", "--user", "alice")),
		[]string{"consumer_byte_rate 2097152->- deleted", "producer_byte_rate 524288->- deleted"}; !slices.Equal(got, want) {
		t.Errorf("delete both of alice's: %v, want %v", got, want)
	}
	if got, want := quotaChanges(rows("delete", "--user", "alice", "--consumer-byte-rate")),
		[]string{"consumer_byte_rate -->- absent"}; !slices.Equal(got, want) {
		t.Errorf("deleting what is gone: %v, want %v", got, want)
	}
	for _, args := range [][]string{
		{"--user-default"},
		{"--client-id", "billing", "--consumer-byte-rate", "--producer-byte-rate"},
		{"--client-default"},
		{"--user", "alice", "--client-default"},
		{"--user-default", "--client-id", "billing", "--producer-byte-rate"},
		{"--user-default", "--client-default", "--consumer-byte-rate"},
	} {
		quota(append([]string{"delete"}, args...)...)
	}
	if got, want := storedQuotas(t, kb), []string{"user=alice, client-id=billing consumer_byte_rate=512"}; !slices.Equal(got, want) {
		t.Errorf("after the deletes: %v, want %v", got, want)
	}
	if got := quotaShorts(rows("list")); !slices.Equal(got, []string{"user=alice, client-id=billing consumer_byte_rate=512"}) {
		t.Errorf("quota list after the deletes: %v", got)
	}
}

// TestQuotaRefused: a rate the broker refuses (Gregor wants whole rates
// above 0) fails with INVALID_REQUEST and the broker's message, exit
// status 1, and nothing is stored; neither is the other rate given with
// it.
func TestQuotaRefused(t *testing.T) {
	kb := ktest.NewBroker(t)
	r := gregor(t, kb.Addr, "", "quota", "set", "--user-default", "--producer-byte-rate", "0", "--consumer-byte-rate", "1024")
	if r.code != ExitFailed {
		t.Errorf("exit %d, want %d; stderr %q", r.code, ExitFailed, r.stderr)
	}
	golden(t, "quota_set_refused", r.stdout+"--- stderr\n"+r.stderr)
	for _, args := range [][]string{
		{"--client-id", "c", "--consumer-byte-rate", "-5"},
		{"--user", "u", "--producer-byte-rate", "0", "--dry-run"},
	} {
		r := gregor(t, kb.Addr, "", append([]string{"quota", "set"}, args...)...)
		if r.code != ExitFailed || !strings.Contains(r.stderr, "INVALID_REQUEST: Configuration") || !strings.Contains(r.stderr, "must be at least 1 (bytes/s)") {
			t.Errorf("quota set %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	if got := storedQuotas(t, kb); len(got) != 0 {
		t.Errorf("refused quotas stored: %v", got)
	}
}

// TestQuotaNotAuthorized: with the authorizer on, a user who is no super
// user gets exit status 4 and the hint: listing takes DESCRIBE_CONFIGS on
// the cluster, changing ALTER_CONFIGS. Granted DESCRIBE_CONFIGS, bob may
// list but still not change them; the quotas stay as they were.
func TestQuotaNotAuthorized(t *testing.T) {
	kb := aclBroker(t, "bob")
	admin, bob := aclLogin("admin"), aclLogin("bob")
	ok(t, kb.Addr, "", with([]string{"quota", "set", "--user", "bob", "--producer-byte-rate", "1024"}, admin...)...)
	type attempt struct {
		args []string
		verb string
	}
	change := []attempt{
		{[]string{"quota", "set", "--user", "bob", "--producer-byte-rate", "1048576"}, "change"},
		{[]string{"quota", "set", "--user-default", "--consumer-byte-rate", "1", "--dry-run"}, "change"},
		{[]string{"quota", "delete", "--user", "bob"}, "change"},
		{[]string{"quota", "delete", "--user", "bob", "--dry-run"}, "change"},
	}
	try := func(when string, cases []attempt) {
		t.Helper()
		for _, c := range cases {
			r := gregor(t, kb.Addr, "", with(c.args, bob...)...)
			op := map[string]string{"list": "DESCRIBE_CONFIGS", "change": "ALTER_CONFIGS"}[c.verb]
			want := "gregor " + strings.Join(c.args[:2], " ") + ": User:bob may not " + c.verb + " client quotas (CLUSTER_AUTHORIZATION_FAILED): that takes " +
				op + " on the cluster, or being one of the brokers' super.users\n"
			if r.code != ExitAuth || r.stderr != want || r.stdout != "" {
				t.Errorf("%s: bob: %s: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", when, strings.Join(c.args, " "), r.code, r.stdout, r.stderr, ExitAuth, want)
			}
		}
	}
	try("without ACLs", append([]attempt{{[]string{"quota", "list"}, "list"}, {[]string{"quota", "list", "--user", "bob"}, "list"}}, change...))

	ok(t, kb.Addr, "", with([]string{"acl", "create", "--allow", "bob", "--operation", "describe-configs", "--cluster"}, admin...)...)
	if out := ok(t, kb.Addr, "", with([]string{"quota", "list"}, bob...)...); !strings.Contains(out, "user=bob  producer_byte_rate  1.0 KiB/s") {
		t.Errorf("bob listing with DESCRIBE_CONFIGS:\n%s", out)
	}
	try("with DESCRIBE_CONFIGS", change)

	var got []quotaRow
	decode(t, kb.Addr, "", &got, with([]string{"quota", "list"}, admin...)...)
	if s := quotaShorts(got); !slices.Equal(s, []string{"user=bob producer_byte_rate=1024"}) {
		t.Errorf("quotas after bob's attempts: %v", s)
	}
}

// TestQuotaUsageErrors: impossible flag combinations are usage errors,
// found before connecting (nothing listens on the address).
func TestQuotaUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"set", "--producer-byte-rate", "1"}, "name the entity: --user NAME or --user-default"},
		{[]string{"set", "--user", "alice"}, "nothing to set: give --producer-byte-rate N, --consumer-byte-rate N or both"},
		{[]string{"set", "--user", "alice", "--user-default", "--producer-byte-rate", "1"}, "--user and --user-default contradict"},
		{[]string{"set", "--client-id", "c", "--client-default", "--producer-byte-rate", "1"}, "--client-id and --client-default contradict"},
		{[]string{"set", "--user", "alice", "--user", "bob", "--producer-byte-rate", "1"}, "--user given 2 times: an entity has one user"},
		{[]string{"set", "--client-id", "a", "--client-id", "b", "--producer-byte-rate", "1"}, "--client-id given 2 times"},
		{[]string{"set", "--user", "", "--producer-byte-rate", "1"}, "--user: a name cannot be empty (--user-default is the default one)"},
		{[]string{"set", "--user", "User:", "--producer-byte-rate", "1"}, "--user: a name cannot be empty"},
		{[]string{"set", "--client-id", "", "--producer-byte-rate", "1"}, "--client-id: a name cannot be empty (--client-default is the default one)"},
		{[]string{"set", "--user", "alice", "--producer-byte-rate", "1MiB"}, `--producer-byte-rate "1MiB": want a whole number of bytes per second`},
		{[]string{"set", "--user", "alice", "--consumer-byte-rate", "1.5"}, `--consumer-byte-rate "1.5": want a whole number`},
		{[]string{"set", "--user", "alice", "--consumer-byte-rate", ""}, `--consumer-byte-rate "": want a whole number`},
		{[]string{"set", "--user", "alice", "--producer-byte-rate", "1", "--producer-byte-rate", "2"}, "--producer-byte-rate given 2 times"},
		{[]string{"set", "--user", "alice", "--producer-byte-rate", "9007199254740993"}, "want at most 9007199254740992 bytes per second"},
		{[]string{"set", "alice", "--producer-byte-rate", "1"}, `unexpected argument "alice"`},
		{[]string{"delete"}, "name the entity"},
		{[]string{"delete", "--user-default", "--user", "x"}, "--user and --user-default contradict"},
		{[]string{"delete", "--user", "alice", "--producer-byte-rate", "5"}, `unexpected argument "5"`},
		{[]string{"list", "--strict"}, "--strict goes with --user"},
		{[]string{"list", "--user", ""}, "--user: a name cannot be empty"},
		{[]string{"list", "--client-id", "a", "--client-default"}, "--client-id and --client-default contradict"},
		{[]string{"list", "alice"}, `unexpected argument "alice"`},
	} {
		args := append([]string{"quota"}, c.args...)
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := gregor(t, "127.0.0.1:1", "", args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, c.stderr) || strings.Contains(r.stderr, "cannot reach") {
				t.Errorf("exit %d, want %d; stderr %q, want %q", r.code, ExitUsage, r.stderr, c.stderr)
			}
		})
	}
}

// TestQuotaOtherClusters: against another Kafka-compatible cluster
// (franz-go's fake) list shows the entities and keys Gregor refuses to
// keep (ip, request_percentage) as they are, and a refusal of the whole
// describe shows the broker's message with exit status 1.
func TestQuotaOtherClusters(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	a := c.ListenAddrs()[0]
	cl := newFakeAdmin(t, a)
	ip, user := "10.0.0.7", "alice"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cl.AlterClientQuotas(ctx, []kadm.AlterClientQuotaEntry{
		{Entity: kadm.ClientQuotaEntity{{Type: "ip", Name: &ip}}, Ops: []kadm.AlterClientQuotaOp{{Key: "connection_creation_rate", Value: 5}}},
		{Entity: kadm.ClientQuotaEntity{{Type: "user", Name: &user}}, Ops: []kadm.AlterClientQuotaOp{{Key: "request_percentage", Value: 12.5}}},
		// Client ID first: listed user first all the same.
		{Entity: kadm.ClientQuotaEntity{{Type: "client-id"}, {Type: "user", Name: &user}}, Ops: []kadm.AlterClientQuotaOp{{Key: "producer_byte_rate", Value: 1536}}},
	}); err != nil {
		t.Fatal(err)
	}
	want := "ENTITY                           KEY                       VALUE\n" +
		"user=alice                       request_percentage        12.5\n" +
		"user=alice, client-id=<default>  producer_byte_rate        1.5 KiB/s\n" +
		"ip=10.0.0.7                      connection_creation_rate  5\n"
	if out := ok(t, a, "", "quota", "list"); out != want {
		t.Errorf("quota list:\n%s\nwant:\n%s", out, want)
	}

	c.ControlKey(kmsg.DescribeClientQuotas.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		resp := req.ResponseKind().(*kmsg.DescribeClientQuotasResponse)
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("Invalid entity filter")
		return resp, nil, true
	})
	r := gregor(t, a, "", "quota", "list", "--user", "alice")
	if want := "gregor quota list: INVALID_REQUEST: Invalid entity filter\n"; r.code != ExitFailed || r.stderr != want {
		t.Errorf("a refused describe: exit %d, stderr %q; want exit %d, %q", r.code, r.stderr, ExitFailed, want)
	}
	// set goes on without knowing the old values.
	if out := ok(t, a, "", "quota", "set", "--user", "alice", "--producer-byte-rate", "2048"); !strings.Contains(out, "user=alice  producer_byte_rate  -    2.0 KiB/s  set") {
		t.Errorf("set when the old values are unknown:\n%s", out)
	}
}

// newFakeAdmin is a kadm client of a kfake cluster, closed with the test.
func newFakeAdmin(t *testing.T, addr string) *kadm.Client {
	t.Helper()
	adm, err := kadm.NewOptClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(adm.Close)
	return adm
}

// TestQuotaHelp: gregor --help lists quota.
func TestQuotaHelp(t *testing.T) {
	if out := gregor(t, "", "", "--help").stdout; !strings.Contains(out, "\n  quota     set, list, delete client quotas") {
		t.Errorf("gregor --help lacks quota:\n%s", out)
	}
}

// TestQuotaEntityOrder: entities sort a user's together, <default>
// before names, the user alone before with client IDs, and those
// without a user last.
func TestQuotaEntityOrder(t *testing.T) {
	s := func(v string) *string { return &v }
	u := func(n *string) kadm.ClientQuotaEntityComponent {
		return kadm.ClientQuotaEntityComponent{Type: "user", Name: n}
	}
	c := func(n *string) kadm.ClientQuotaEntityComponent {
		return kadm.ClientQuotaEntityComponent{Type: "client-id", Name: n}
	}
	want := []kadm.ClientQuotaEntity{
		{u(nil)}, {u(nil), c(nil)}, {c(s("a")), u(nil)}, {u(s("alice"))}, {c(nil), u(s("alice"))}, {u(s("alice")), c(s("b"))},
		{u(s("bob"))}, {c(nil)}, {c(s("a"))}, {{Type: "ip", Name: s("10.0.0.1")}},
	}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortStableFunc(got, compareEntities)
	var names, wantNames []string
	for i := range got {
		names, wantNames = append(names, entityName(got[i])), append(wantNames, entityName(want[i]))
	}
	if !slices.Equal(names, wantNames) {
		t.Errorf("order:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(wantNames, "\n"))
	}
	if !sameEntity(kadm.ClientQuotaEntity{u(s("a")), c(nil)}, kadm.ClientQuotaEntity{c(nil), u(s("a"))}) ||
		sameEntity(kadm.ClientQuotaEntity{u(s("a"))}, kadm.ClientQuotaEntity{u(nil)}) {
		t.Errorf("sameEntity")
	}
}
