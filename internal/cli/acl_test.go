package cli

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/ktest"
)

// aclBroker starts a broker with a SASL_PLAINTEXT listener and the
// authorizer on; admin is a super user, the other users are not. Each
// user's password is NAME-secret (SCRAM-SHA-256).
func aclBroker(t *testing.T, users ...string) *ktest.Broker {
	t.Helper()
	kb := ktest.NewBroker(t,
		ktest.Set("listeners", "SASL_PLAINTEXT://127.0.0.1:0"),
		ktest.Set("sasl.enabled.mechanisms", "SCRAM-SHA-256"),
		ktest.Set("authorizer.class.name", "org.apache.kafka.metadata.authorizer.StandardAuthorizer"),
		ktest.Set("super.users", "User:admin"),
		// A consumer group's first member need not wait 3 s.
		ktest.Set("group.initial.rebalance.delay.ms", "0"))
	for _, u := range append([]string{"admin"}, users...) {
		if _, err := kb.B.EnsureScramUser("SCRAM-SHA-256", u, u+"-secret"); err != nil {
			t.Fatal(err)
		}
	}
	return kb
}

// aclLogin is the flags that authenticate as user.
func aclLogin(user string) []string {
	return []string{"--sasl-mechanism", "SCRAM-SHA-256", "--sasl-user", user, "--sasl-password", user + "-secret"}
}

// aclRow is a row of acl create, list or delete --json.
type aclRow struct {
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
	Pattern      string `json:"pattern"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
	Status       string `json:"status"`
	Error        string `json:"error"`
}

// short renders a row as "TOPIC:orders:LITERAL User:alice@* WRITE
// ALLOW", to compare sets of bindings.
func (r aclRow) short() string {
	return r.ResourceType + ":" + r.Name + ":" + r.Pattern + " " + r.Principal + "@" + r.Host + " " + r.Operation + " " + r.Permission
}

func shorts(rows []aclRow) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.short())
	}
	slices.Sort(out)
	return out
}

func statuses(rows []aclRow) []string {
	var out []string
	for _, r := range rows {
		if !slices.Contains(out, r.Status) {
			out = append(out, r.Status)
		}
	}
	return out
}

// TestACLLifecycle: ACLs created (plain, --producer, --consumer,
// prefixed, deny), listed with each filter, deleted; the broker enforces
// what the CLI created and deleted.
func TestACLLifecycle(t *testing.T) {
	kb := aclBroker(t, "alice", "billing")
	a := kb.Addr
	admin := aclLogin("admin")
	acl := func(args ...string) string {
		t.Helper()
		return ok(t, a, "", with(append([]string{"acl"}, args...), admin...)...)
	}
	rows := func(args ...string) []aclRow {
		t.Helper()
		var out []aclRow
		decode(t, a, "", &out, with(append([]string{"acl"}, args...), admin...)...)
		return out
	}

	if out := acl("list"); out != "RESOURCE-TYPE  NAME  PATTERN  PRINCIPAL  HOST  OPERATION  PERMISSION\n" {
		t.Errorf("acl list with no ACLs:\n%s", out)
	}
	if out := acl("list", "--json"); out != "[]\n" {
		t.Errorf("acl list --json with no ACLs: %q", out)
	}

	// --producer --idempotent: WRITE, DESCRIBE, CREATE on the topic,
	// IDEMPOTENT_WRITE on the cluster; "User:" added.
	golden(t, "acl_create_producer", acl("create", "--allow", "alice", "--producer", "--topic", "orders", "--idempotent"))
	again := rows("create", "--allow", "User:alice", "--producer", "--topic", "orders", "--idempotent")
	if len(again) != 4 || !slices.Equal(statuses(again), []string{"exists"}) {
		t.Errorf("creating the same ACLs again: %+v, want 4 that exist", again)
	}
	// --consumer: READ, DESCRIBE on the topic, READ on the group.
	consumer := rows("create", "--allow", "billing", "--consumer", "--topic", "orders", "--group", "billing")
	if got, want := shorts(consumer), []string{
		"GROUP:billing:LITERAL User:billing@* READ ALLOW",
		"TOPIC:orders:LITERAL User:billing@* DESCRIBE ALLOW",
		"TOPIC:orders:LITERAL User:billing@* READ ALLOW",
	}; !slices.Equal(got, want) || !slices.Equal(statuses(consumer), []string{"created"}) {
		t.Errorf("--consumer created %v %v, want %v", got, statuses(consumer), want)
	}
	// Both at once, with a transactional ID.
	both := rows("create", "--allow", "carol", "--producer", "--consumer", "--topic", "pay", "--group", "pay", "--transactional-id", "pay-tx")
	if got, want := shorts(both), []string{
		"GROUP:pay:LITERAL User:carol@* READ ALLOW",
		"TOPIC:pay:LITERAL User:carol@* CREATE ALLOW",
		"TOPIC:pay:LITERAL User:carol@* DESCRIBE ALLOW",
		"TOPIC:pay:LITERAL User:carol@* READ ALLOW",
		"TOPIC:pay:LITERAL User:carol@* WRITE ALLOW",
		"TRANSACTIONAL_ID:pay-tx:LITERAL User:carol@* DESCRIBE ALLOW",
		"TRANSACTIONAL_ID:pay-tx:LITERAL User:carol@* WRITE ALLOW",
	}; !slices.Equal(got, want) {
		t.Errorf("--producer --consumer --transactional-id created %v, want %v", got, want)
	}
	// Prefixed, and Kafka's spellings of operations; a deny from one host.
	acl("create", "--allow", "bob", "--operation", "Read", "--topic", "ord", "--prefixed")
	acl("create", "--deny", "mallory", "--host", "10.0.0.7", "--operation", "Write,DescribeConfigs", "--topic", "orders")
	acl("create", "--allow", "ops", "--operation", "describe", "--operation", "alter-configs", "--cluster", "--topic", "*")

	golden(t, "acl_list", acl("list"))

	for _, c := range []struct {
		args []string
		n    int
	}{
		{[]string{"--principal", "alice"}, 4},
		{[]string{"--principal", "alice", "--principal", "User:billing"}, 7},
		{[]string{"--allow", "alice", "--topic", "orders"}, 3},
		{[]string{"--deny", "mallory"}, 2},
		{[]string{"--allow", "mallory"}, 0},
		{[]string{"--topic", "orders"}, 7},
		{[]string{"--topic", "orders", "--resource-pattern-type", "any"}, 7},
		{[]string{"--topic", "orders", "--resource-pattern-type", "match"}, 10}, // + bob's ord prefix, ops' *
		{[]string{"--topic", "ord"}, 0},
		{[]string{"--topic", "ord", "--prefixed"}, 1},
		{[]string{"--prefixed"}, 1},
		{[]string{"--topic", "*"}, 2},
		{[]string{"--cluster"}, 3},
		{[]string{"--cluster", "--prefixed"}, 3}, // the cluster's are literal
		{[]string{"--group", "billing", "--group", "pay"}, 2},
		{[]string{"--transactional-id", "pay-tx"}, 2},
		{[]string{"--operation", "read"}, 5},
		{[]string{"--operation", "READ,idempotent_write", "--principal", "alice"}, 1},
		{[]string{"--host", "10.0.0.7"}, 2},
		{[]string{"--host", "10.0.0.7", "--allow", "mallory"}, 0},
		{[]string{"--operation", "any"}, 21},
		{nil, 21},
	} {
		if got := rows(append([]string{"list"}, c.args...)...); len(got) != c.n {
			t.Errorf("acl list %s: %d bindings, want %d:\n%v", strings.Join(c.args, " "), len(got), c.n, shorts(got))
		}
	}

	// The broker enforces them: alice may produce to orders (and
	// create it), billing may consume it in group billing.
	alice := aclLogin("alice")
	ok(t, a, "", with([]string{"topic", "create", "orders", "-p", "1"}, admin...)...)
	ok(t, a, "o1\n", with([]string{"produce", "orders"}, alice...)...)
	if out := ok(t, a, "", with([]string{"consume", "orders", "-g", "billing", "-o", "start", "-n", "1"}, aclLogin("billing")...)...); out != "o1\n" {
		t.Errorf("billing consuming orders: %q", out)
	}

	// A dry run deletes nothing.
	dry := rows("delete", "--principal", "mallory", "--dry-run")
	if len(dry) != 2 || !slices.Equal(statuses(dry), []string{"would delete"}) {
		t.Errorf("delete --dry-run: %+v", dry)
	}
	if got := rows("list", "--principal", "mallory"); len(got) != 2 {
		t.Errorf("after delete --dry-run: %d of mallory's bindings left, want 2", len(got))
	}
	// Without a filter delete refuses, and deletes nothing.
	if r := gregor(t, a, "", with([]string{"acl", "delete"}, admin...)...); r.code != ExitUsage || !strings.Contains(r.stderr, "--all") {
		t.Errorf("acl delete without a filter: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := rows("list"); len(got) != 21 {
		t.Errorf("after the refused delete: %d bindings, want 21", len(got))
	}

	golden(t, "acl_delete", acl("delete", "--allow", "alice", "--topic", "orders"))
	if got := rows("list", "--principal", "alice"); len(got) != 1 || got[0].ResourceType != "CLUSTER" {
		t.Errorf("alice's bindings after deleting those on orders: %v", shorts(got))
	}
	r := gregor(t, a, "o2\n", with([]string{"produce", "orders", "--timeout", "5s"}, alice...)...)
	if r.code != ExitAuth || !strings.Contains(r.stderr, "TOPIC_AUTHORIZATION_FAILED") {
		t.Errorf("alice producing after her ACLs went: exit %d, stderr %q", r.code, r.stderr)
	}
	if got := rows("delete", "--allow", "alice", "--topic", "orders"); len(got) != 0 {
		t.Errorf("deleting again: %+v, want nothing", got)
	}

	gone := rows("delete", "--all")
	if len(gone) != 18 || !slices.Equal(statuses(gone), []string{"deleted"}) {
		t.Errorf("delete --all: %d bindings %v, want 18 deleted", len(gone), statuses(gone))
	}
	if got := rows("list"); len(got) != 0 {
		t.Errorf("after delete --all: %v", shorts(got))
	}
}

// TestACLSecurityDisabled: a cluster without an authorizer keeps no
// ACLs; the message says what to set, and the exit status is 1.
func TestACLSecurityDisabled(t *testing.T) {
	kb := ktest.NewBroker(t)
	for _, args := range [][]string{
		{"acl", "list"},
		{"acl", "create", "--allow", "alice", "--operation", "read", "--topic", "t"},
		{"acl", "delete", "--all"},
		{"acl", "delete", "--all", "--dry-run"},
	} {
		r := gregor(t, kb.Addr, "", args...)
		want := "gregor " + strings.Join(args[:2], " ") + ": the cluster has no authorizer, so it keeps no ACLs (SECURITY_DISABLED): " +
			"set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer on the brokers\n"
		if r.code != ExitFailed || r.stderr != want || r.stdout != "" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit %d, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr, ExitFailed, want)
		}
	}
}

// TestACLNotAuthorized: a user who is no super user and has no ALTER on
// the cluster gets exit status 4, and the ACLs stay as they were.
func TestACLNotAuthorized(t *testing.T) {
	kb := aclBroker(t, "bob")
	ok(t, kb.Addr, "", with([]string{"acl", "create", "--allow", "bob", "--operation", "read", "--topic", "t"}, aclLogin("admin")...)...)
	bob := aclLogin("bob")
	for _, c := range []struct {
		args []string
		verb string
	}{
		{[]string{"acl", "list"}, "list"},
		{[]string{"acl", "create", "--allow", "bob", "--operation", "all", "--cluster"}, "change"},
		{[]string{"acl", "delete", "--all"}, "change"},
		{[]string{"acl", "delete", "--topic", "t", "--dry-run"}, "list"},
	} {
		r := gregor(t, kb.Addr, "", with(c.args, bob...)...)
		want := "User:bob may not " + c.verb + " ACLs (CLUSTER_AUTHORIZATION_FAILED)"
		if r.code != ExitAuth || !strings.Contains(r.stderr, want) || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("bob: %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), r.code, r.stderr, ExitAuth, want)
		}
	}
	// The login from the environment, as every command takes it.
	env := map[string]string{"GREGOR_SASL_MECHANISM": "SCRAM-SHA-256", "GREGOR_SASL_USER": "bob", "GREGOR_SASL_PASSWORD": "bob-secret"}
	if r := gregorEnv(t, kb.Addr, env, "", "acl", "list"); r.code != ExitAuth || !strings.Contains(r.stderr, "User:bob may not list ACLs") {
		t.Errorf("bob from the environment: exit %d, stderr %q", r.code, r.stderr)
	}
	env["GREGOR_SASL_USER"], env["GREGOR_SASL_PASSWORD"] = "admin", "admin-secret"
	var listed []aclRow
	r := gregorEnv(t, kb.Addr, env, "", "acl", "list", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &listed); r.code != 0 || err != nil || len(listed) != 1 || listed[0].Principal != "User:bob" {
		t.Errorf("ACLs after bob's attempts: exit %d, %v, %+v; stderr %q", r.code, err, listed, r.stderr)
	}
}

// TestACLUsageErrors: impossible flag combinations are usage errors,
// found before connecting (nothing listens on the address).
func TestACLUsageErrors(t *testing.T) {
	for _, c := range []struct {
		args   []string
		stderr string
	}{
		{[]string{"delete"}, "select the ACLs to delete"},
		{[]string{"delete", "--resource-pattern-type", "literal"}, "select the ACLs to delete"},
		{[]string{"delete", "--operation", "any"}, "select the ACLs to delete"},
		{[]string{"delete", "--all", "--topic", "t"}, "--all deletes every ACL: it takes no filters"},
		{[]string{"delete", "--all", "--prefixed"}, "--all deletes every ACL"},
		{[]string{"delete", "orders"}, `unexpected argument "orders"`},
		{[]string{"list", "--topic", ""}, "--topic: a name cannot be empty"},
		{[]string{"list", "--resource-pattern-type", "glob"}, `--resource-pattern-type "glob": want literal, prefixed, any or match`},
		{[]string{"list", "--prefixed", "--resource-pattern-type", "literal"}, "--prefixed contradicts --resource-pattern-type literal"},
		{[]string{"list", "--operation", "frob"}, `--operation "frob": want read, write, create, delete, alter, describe, cluster-action, describe-configs, alter-configs, idempotent-write, all or any`},
		{[]string{"list", "--principal", "User:"}, `--principal "User:": want a principal`},
		{[]string{"create", "--operation", "read", "--topic", "t"}, "give --allow PRINCIPAL or --deny PRINCIPAL"},
		{[]string{"create", "--allow", "a", "--operation", "read"}, "name a resource"},
		{[]string{"create", "--allow", "a", "--topic", "t"}, "give --operation OP"},
		{[]string{"create", "--allow", "a", "--operation", "any", "--topic", "t"}, `--operation "any": want read, write`},
		{[]string{"create", "--allow", "a", "--operation", "read", "--topic", "t", "--resource-pattern-type", "match"}, `--resource-pattern-type "match": want literal or prefixed`},
		{[]string{"create", "--allow", "a", "--operation", "idempotent-write", "--topic", "t"}, "--operation idempotent-write does not apply to a topic, which takes read, write, create, delete, alter, describe, describe-configs, alter-configs or all"},
		{[]string{"create", "--allow", "a", "--operation", "write", "--group", "g"}, "--operation write does not apply to a group"},
		{[]string{"create", "--allow", "a", "--operation", "read", "--cluster"}, "--operation read does not apply to the cluster"},
		{[]string{"create", "--allow", "a", "--operation", "read", "--transactional-id", "x"}, "--operation read does not apply to a transactional ID"},
		{[]string{"create", "--allow", "a", "--host", "", "--operation", "read", "--topic", "t"}, "--host: a host cannot be empty"},
		{[]string{"create", "--allow", "a", "--producer"}, "--producer needs --topic"},
		{[]string{"create", "--allow", "a", "--consumer", "--topic", "t"}, "--consumer needs --topic and --group"},
		{[]string{"create", "--allow", "a", "--producer", "--topic", "t", "--operation", "alter"}, "--producer choose the operations"},
		{[]string{"create", "--deny", "a", "--consumer", "--topic", "t", "--group", "g"}, "--consumer allow: use --allow, not --deny"},
		{[]string{"create", "--producer", "--topic", "t"}, "--producer need --allow PRINCIPAL"},
		{[]string{"create", "--allow", "a", "--producer", "--topic", "t", "--group", "g"}, "--group goes with --consumer"},
		{[]string{"create", "--allow", "a", "--consumer", "--topic", "t", "--group", "g", "--transactional-id", "x"}, "--transactional-id goes with --producer"},
		{[]string{"create", "--allow", "a", "--producer", "--topic", "t", "--cluster"}, "--cluster does not go with --producer"},
		{[]string{"create", "--allow", "a", "--operation", "write", "--topic", "t", "--idempotent"}, "--idempotent goes with --producer"},
	} {
		args := append([]string{"acl"}, c.args...)
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			r := gregor(t, "127.0.0.1:1", "", args...)
			if r.code != ExitUsage || !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("exit %d, want %d; stderr %q, want %q", r.code, ExitUsage, r.stderr, c.stderr)
			}
		})
	}
}

// TestACLHelp: gregor --help lists acl.
func TestACLHelp(t *testing.T) {
	if out := gregor(t, "", "", "--help").stdout; !strings.Contains(out, "\n  acl       create, list, delete ACLs") {
		t.Errorf("gregor --help lacks acl:\n%s", out)
	}
}

// TestACLOperationSpellings: --operation takes kafka-acls' spellings
// (Describe, DescribeConfigs, IdempotentWrite), the enum's
// (IDEMPOTENT_WRITE) and the CLI's (cluster-action), repeated or
// comma-separated, each once.
func TestACLOperationSpellings(t *testing.T) {
	got, err := parseOperations([]string{"Describe,DescribeConfigs", "IdempotentWrite", "IDEMPOTENT_WRITE", "cluster-action", " read ", "ALL", "AlterConfigs"}, false)
	want := []kmsg.ACLOperation{kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationIdempotentWrite,
		kmsg.ACLOperationClusterAction, kmsg.ACLOperationRead, kmsg.ACLOperationAll, kmsg.ACLOperationAlterConfigs}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("parseOperations: %v, %v; want %v", got, err, want)
	}
	for _, op := range aclOps {
		if got, err := parseOperations([]string{opName(op)}, false); err != nil || len(got) != 1 || got[0] != op {
			t.Errorf("%s: %v, %v", opName(op), got, err)
		}
	}
	if _, err := parseOperations([]string{"read,"}, false); err == nil {
		t.Errorf(`"read,": no error`)
	}
	if got, err := parseOperations([]string{"any"}, true); err != nil || !slices.Equal(got, []kmsg.ACLOperation{kmsg.ACLOperationAny}) {
		t.Errorf("any in a filter: %v, %v", got, err)
	}
	ps, err := principals("allow", []string{"alice", "User:bob", "*", "CN=admin,O=acme", "alice"})
	if want := []string{"User:alice", "User:bob", "User:*", "User:CN=admin,O=acme"}; err != nil || !slices.Equal(ps, want) {
		t.Errorf("principals: %v, %v; want %v", ps, err, want)
	}
	if _, err := principals("deny", []string{""}); err == nil {
		t.Errorf("an empty principal: no error")
	}
}
