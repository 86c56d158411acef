package auth

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	topic   = kmsg.ACLResourceTypeTopic
	group   = kmsg.ACLResourceTypeGroup
	literal = kmsg.ACLResourcePatternTypeLiteral
	prefix  = kmsg.ACLResourcePatternTypePrefixed
	allow   = kmsg.ACLPermissionTypeAllow
	deny    = kmsg.ACLPermissionTypeDeny
	read    = kmsg.ACLOperationRead
	write   = kmsg.ACLOperationWrite
	desc    = kmsg.ACLOperationDescribe
)

func bind(res Resource, name string, pat Pattern, principal, host string, op Operation, perm Permission) Binding {
	return Binding{Resource: res, Name: name, Pattern: pat, Principal: principal, Host: host, Operation: op, Permission: perm}
}

func TestAuthorize(t *testing.T) {
	acls := []Binding{
		bind(topic, "orders", literal, "User:alice", "*", write, allow),
		bind(topic, "logs-", prefix, "User:bob", "*", read, allow),
		bind(topic, "logs-secret", literal, "User:bob", "*", read, deny),
		bind(topic, "*", literal, "User:carol", "10.0.0.1", kmsg.ACLOperationAll, allow),
		bind(topic, "public", literal, "User:*", "*", read, allow),
		bind(group, "g", literal, "User:alice", "*", read, allow),
		bind(topic, "cfg", literal, "User:alice", "*", kmsg.ACLOperationAlterConfigs, allow),
		bind(topic, "private-", prefix, "User:*", "*", kmsg.ACLOperationAll, deny),
		bind(topic, "private-x", literal, "User:alice", "*", read, allow),
	}
	a := NewAuthorizer(acls, []string{"User:admin"}, false)
	for _, c := range []struct {
		principal, host string
		op              Operation
		res             Resource
		name            string
		want            bool
	}{
		{"User:alice", "1.2.3.4", write, topic, "orders", true},
		{"User:alice", "1.2.3.4", read, topic, "orders", false},
		{"User:alice", "1.2.3.4", desc, topic, "orders", true}, // WRITE implies DESCRIBE
		{"User:bob", "1.2.3.4", write, topic, "orders", false},
		{"User:bob", "1.2.3.4", read, topic, "logs-app", true},
		{"User:bob", "1.2.3.4", read, topic, "logs-secret", false}, // DENY wins
		{"User:bob", "1.2.3.4", desc, topic, "logs-secret", true},  // a DENY of READ leaves DESCRIBE (implied by the prefix's READ)
		{"User:carol", "10.0.0.1", write, topic, "anything", true},
		{"User:carol", "10.0.0.2", write, topic, "anything", false}, // wrong host
		{"User:dave", "1.2.3.4", read, topic, "public", true},       // wildcard principal
		{"User:dave", "1.2.3.4", read, topic, "unnamed", false},     // no ACL, not allowed by default
		{"User:alice", "1.2.3.4", read, group, "g", true},
		{"User:alice", "1.2.3.4", read, group, "other", false},
		{"User:alice", "1.2.3.4", kmsg.ACLOperationDescribeConfigs, topic, "cfg", true}, // implied
		{"User:alice", "1.2.3.4", read, topic, "private-x", false},                      // prefixed DENY of ALL wins
		{"User:admin", "1.2.3.4", kmsg.ACLOperationDelete, topic, "private-x", true},    // super user
		{"User:ANONYMOUS", "1.2.3.4", read, topic, "public", true},
	} {
		if got := a.Authorize(c.principal, c.host, c.op, c.res, c.name); got != c.want {
			t.Errorf("Authorize(%s, %s, %s, %s %q) = %v, want %v", c.principal, c.host, c.op, c.res, c.name, got, c.want)
		}
	}

	// allow.everyone.if.no.acl.found applies only to resources no
	// binding names, whoever it is for.
	open := NewAuthorizer(acls, nil, true)
	if !open.Authorize("User:dave", "h", write, group, "unnamed") {
		t.Error("no ACL for the group: allowed with allow.everyone.if.no.acl.found")
	}
	if open.Authorize("User:dave", "h", write, topic, "unnamed") {
		t.Error("carol's wildcard names every topic: refused even with allow.everyone.if.no.acl.found")
	}
	if open.Authorize("User:dave", "h", write, topic, "orders") {
		t.Error("orders has ACLs, none for dave: refused even with allow.everyone.if.no.acl.found")
	}
}

func TestAuthorizeAny(t *testing.T) {
	for _, c := range []struct {
		name string
		acls []Binding
		want bool
	}{
		{"none", nil, false},
		{"literal allow", []Binding{bind(topic, "t", literal, "User:u", "*", write, allow)}, true},
		{"other op", []Binding{bind(topic, "t", literal, "User:u", "*", read, allow)}, false},
		{"other user", []Binding{bind(topic, "t", literal, "User:v", "*", write, allow)}, false},
		{"denied literal", []Binding{
			bind(topic, "t", literal, "User:u", "*", write, allow),
			bind(topic, "t", literal, "User:u", "*", write, deny),
		}, false},
		{"denied everywhere", []Binding{
			bind(topic, "t", literal, "User:u", "*", write, allow),
			bind(topic, "*", literal, "User:*", "*", kmsg.ACLOperationAll, deny),
		}, false},
		{"prefix dominated", []Binding{
			bind(topic, "ab", prefix, "User:u", "*", write, allow),
			bind(topic, "a", prefix, "User:u", "*", write, deny),
		}, false},
		{"one of two left", []Binding{
			bind(topic, "ab", prefix, "User:u", "*", write, allow),
			bind(topic, "x", literal, "User:u", "*", write, allow),
			bind(topic, "a", prefix, "User:u", "*", write, deny),
		}, true},
	} {
		a := NewAuthorizer(c.acls, nil, false)
		if got := a.AuthorizeAny("User:u", "h", write, topic); got != c.want {
			t.Errorf("%s: AuthorizeAny = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestFilterMatches(t *testing.T) {
	s := func(v string) *string { return &v }
	lit := bind(topic, "orders", literal, "User:alice", "*", write, allow)
	wild := bind(topic, "*", literal, "User:bob", "*", read, allow)
	pre := bind(topic, "ord", prefix, "User:bob", "*", read, deny)
	grp := bind(group, "orders", literal, "User:alice", "*", read, allow)
	all := []Binding{lit, wild, pre, grp}
	any := Filter{Resource: kmsg.ACLResourceTypeAny, Pattern: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	for _, c := range []struct {
		name string
		f    func(f *Filter)
		want []Binding
	}{
		{"everything", func(*Filter) {}, all},
		{"topics", func(f *Filter) { f.Resource = topic }, []Binding{lit, wild, pre}},
		{"name any pattern", func(f *Filter) { f.Name = s("orders") }, []Binding{lit, grp}},
		{"literal only", func(f *Filter) { f.Pattern = literal }, []Binding{lit, wild, grp}},
		{"match", func(f *Filter) { f.Resource, f.Pattern, f.Name = topic, kmsg.ACLResourcePatternTypeMatch, s("orders") }, []Binding{lit, wild, pre}},
		{"principal", func(f *Filter) { f.Principal = s("User:bob") }, []Binding{wild, pre}},
		{"deny", func(f *Filter) { f.Permission = deny }, []Binding{pre}},
		{"operation", func(f *Filter) { f.Operation = write }, []Binding{lit}},
		{"host", func(f *Filter) { f.Host = s("10.0.0.1") }, nil},
	} {
		f := any
		c.f(&f)
		var got []Binding
		for _, b := range all {
			if f.Matches(b) {
				got = append(got, b)
			}
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: matched %v, want %v", c.name, got, c.want)
			continue
		}
		for i := range got {
			if got[i] != c.want[i] {
				t.Errorf("%s: matched %v, want %v", c.name, got, c.want)
			}
		}
	}
}

func TestBindingValidate(t *testing.T) {
	good := bind(topic, "t", literal, "User:u", "*", read, allow)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Binding){
		"any resource":   func(b *Binding) { b.Resource = kmsg.ACLResourceTypeAny },
		"match pattern":  func(b *Binding) { b.Pattern = kmsg.ACLResourcePatternTypeMatch },
		"any operation":  func(b *Binding) { b.Operation = kmsg.ACLOperationAny },
		"unknown op":     func(b *Binding) { b.Operation = 99 },
		"any permission": func(b *Binding) { b.Permission = kmsg.ACLPermissionTypeAny },
		"empty name":     func(b *Binding) { b.Name = "" },
		"bad principal":  func(b *Binding) { b.Principal = "alice" },
		"empty host":     func(b *Binding) { b.Host = "" },
	} {
		b := good
		mut(&b)
		if err := b.Validate(); !errors.Is(err, ErrInvalidBinding) {
			t.Errorf("%s: Validate = %v, want ErrInvalidBinding", name, err)
		}
	}
}

// BenchmarkAuthorize: one decision among 1,000 literal topic bindings,
// 100 prefixed ones and a wildcard, as a produce or fetch makes per topic.
func BenchmarkAuthorize(b *testing.B) {
	var acls []Binding
	for i := range 1000 {
		acls = append(acls, bind(topic, "topic-"+string(rune('a'+i%26))+string(rune('a'+i/26%26)), literal, "User:u"+string(rune('a'+i%10)), "*", write, allow))
	}
	for i := range 100 {
		acls = append(acls, bind(topic, "p"+string(rune('a'+i%26))+string(rune('a'+i/26)), prefix, "User:ua", "*", read, allow))
	}
	acls = append(acls, bind(topic, "*", literal, "User:admin", "*", desc, allow))
	a := NewAuthorizer(acls, nil, false)
	b.ReportAllocs()
	for b.Loop() {
		if !a.Authorize("User:ua", "10.0.0.1", write, topic, "topic-aa") {
			b.Fatal("denied")
		}
	}
}

// TestAuthorizeMatchesReference compares the indexed authorizer with a
// direct reading of Kafka's rules over random bindings and requests.
func TestAuthorizeMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	names := []string{"a", "ab", "abc", "b", "ba", "*", "abd"}
	principals := []string{"User:u", "User:v", "User:*"}
	hosts := []string{"h1", "h2", "*"}
	ops := []Operation{kmsg.ACLOperationAll, read, write, desc, kmsg.ACLOperationDelete,
		kmsg.ACLOperationAlter, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs}
	pick := func(n int) int { return rng.IntN(n) }
	reference := func(acls []Binding, allowIfNone bool, principal, host string, op Operation, typ Resource, name string) bool {
		found, allowed := false, false
		for _, b := range acls {
			if b.Resource != typ || !patternCovers(b, name) {
				continue
			}
			found = true
			if !appliesTo(b, principal, host) {
				continue
			}
			if b.Permission == deny && (b.Operation == op || b.Operation == kmsg.ACLOperationAll) {
				return false
			}
			if b.Permission == allow && implies(b.Operation, op) {
				allowed = true
			}
		}
		if !found {
			return allowIfNone
		}
		return allowed
	}
	for round := range 300 {
		var acls []Binding
		for range pick(12) {
			pat := literal
			name := names[pick(len(names))]
			if name != "*" && pick(3) == 0 {
				pat = prefix
			}
			perm := allow
			if pick(4) == 0 {
				perm = deny
			}
			acls = append(acls, bind(Resource(topic+Resource(pick(2))), name, pat,
				principals[pick(len(principals))], hosts[pick(len(hosts))], ops[pick(len(ops))], perm))
		}
		allowIfNone := pick(2) == 0
		a := NewAuthorizer(acls, nil, allowIfNone)
		for range 50 {
			principal, host := principals[pick(2)], hosts[pick(2)]
			op, typ := ops[1+pick(len(ops)-1)], Resource(topic+Resource(pick(2)))
			name := names[pick(len(names)-1)] + []string{"", "x"}[pick(2)]
			if got, want := a.Authorize(principal, host, op, typ, name), reference(acls, allowIfNone, principal, host, op, typ, name); got != want {
				t.Fatalf("round %d: Authorize(%s, %s, %s, %s %q) = %v, reference %v; bindings:\n%v", round, principal, host, op, typ, name, got, want, acls)
			}
		}
	}
}

func TestFilterValidate(t *testing.T) {
	ok := Filter{Resource: kmsg.ACLResourceTypeAny, Pattern: kmsg.ACLResourcePatternTypeAny,
		Operation: kmsg.ACLOperationAny, Permission: kmsg.ACLPermissionTypeAny}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Filter){
		"unknown resource":   func(f *Filter) { f.Resource = kmsg.ACLResourceTypeUnknown },
		"negative resource":  func(f *Filter) { f.Resource = -1 },
		"resource too large": func(f *Filter) { f.Resource = 8 },
		"negative pattern":   func(f *Filter) { f.Pattern = -3 },
		"negative operation": func(f *Filter) { f.Operation = -128 },
		"unknown permission": func(f *Filter) { f.Permission = kmsg.ACLPermissionTypeUnknown },
		"negative permission": func(f *Filter) {
			f.Permission = -2
		},
	} {
		f := ok
		mut(&f)
		if err := f.Validate(); !errors.Is(err, ErrInvalidBinding) {
			t.Errorf("%s: Validate = %v, want ErrInvalidBinding", name, err)
		}
	}
}
