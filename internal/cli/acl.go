package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var aclCmd = &command{
	name:    "acl",
	summary: "create, list and delete ACLs (authorization)",
	help: `Manage the cluster's ACLs, as kafka-acls does (CreateAcls, DescribeAcls,
DeleteAcls). Brokers enforce them with authorizer.class.name set (Kafka's
StandardAuthorizer); without it they keep none and answer
SECURITY_DISABLED. A binding allows (--allow) or forbids (--deny) a
principal an operation on a resource, from a host; a DENY wins over any
ALLOW. Principals are User:NAME — the SASL user, a TLS client
certificate's subject, or User:ANONYMOUS — and "User:" is added to a
name without it. Changing ACLs takes ALTER on the cluster, listing them
DESCRIBE, or being one of the brokers' super.users.`,
	sub: []*command{aclCreateCmd, aclListCmd, aclDeleteCmd},
}

// ---- vocabulary

// aclOps are the operations --operation accepts, in Kafka's order.
var aclOps = []kmsg.ACLOperation{
	kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete,
	kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationClusterAction,
	kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite,
	kmsg.ACLOperationAll,
}

// aclTypeOps are the operations a binding on each resource type may
// grant, ALL aside (Kafka's AclEntry.supportedOperations, which
// kafka-acls checks before creating).
var aclTypeOps = map[kmsg.ACLResourceType][]kmsg.ACLOperation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
		kmsg.ACLOperationDelete, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDelete, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe,
		kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
		kmsg.ACLOperationIdempotentWrite},
	kmsg.ACLResourceTypeTransactionalId: {kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe},
}

// aclTypeNoun names a resource type in messages.
var aclTypeNoun = map[kmsg.ACLResourceType]string{
	kmsg.ACLResourceTypeTopic:           "a topic",
	kmsg.ACLResourceTypeGroup:           "a group",
	kmsg.ACLResourceTypeCluster:         "the cluster",
	kmsg.ACLResourceTypeTransactionalId: "a transactional ID",
}

// opName is how flags spell an operation: "idempotent-write".
func opName(op kmsg.ACLOperation) string {
	return strings.ReplaceAll(strings.ToLower(op.String()), "_", "-")
}

// opList renders operations as "read, write or all".
func opList(ops []kmsg.ACLOperation) string {
	names := make([]string, len(ops))
	for i, op := range ops {
		names[i] = opName(op)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// parseOperations reads repeated, comma-separated --operation values in
// any of Kafka's spellings (Describe, DescribeConfigs, describe-configs,
// IDEMPOTENT_WRITE); a filter may also say "any".
func parseOperations(vals []string, filter bool) ([]kmsg.ACLOperation, error) {
	accepted := aclOps
	if filter {
		accepted = append(slices.Clone(aclOps), kmsg.ACLOperationAny)
	}
	var ops []kmsg.ACLOperation
	for _, v := range vals {
		for _, s := range strings.Split(v, ",") {
			op, err := kmsg.ParseACLOperation(s)
			if err != nil || !slices.Contains(accepted, op) {
				return nil, usagef("--operation %q: want %s", strings.TrimSpace(s), opList(accepted))
			}
			if !slices.Contains(ops, op) {
				ops = append(ops, op)
			}
		}
	}
	return ops, nil
}

// principals adds "User:" to the names without it.
func principals(flagName string, vals []string) ([]string, error) {
	var out []string
	for _, v := range vals {
		p := v
		if !strings.HasPrefix(p, "User:") {
			p = "User:" + p
		}
		if p == "User:" {
			return nil, usagef("--%s %q: want a principal, User:NAME or NAME", flagName, v)
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

// names checks a resource flag's values.
func names(flagName string, vals []string) ([]string, error) {
	if slices.Contains(vals, "") {
		return nil, usagef("--%s: a name cannot be empty", flagName)
	}
	return uniq(vals), nil
}

// ---- bindings as printed

// aclBinding is one ACL binding, for printing and sorting.
type aclBinding struct {
	typ       kmsg.ACLResourceType
	name      string
	pattern   kmsg.ACLResourcePatternType
	principal string
	host      string
	op        kmsg.ACLOperation
	perm      kmsg.ACLPermissionType
}

// compareBindings orders bindings by resource, then principal, host,
// operation and permission: a resource's bindings print together.
func compareBindings(x, y aclBinding) int {
	return cmp.Or(
		cmp.Compare(x.typ, y.typ),
		cmp.Compare(x.name, y.name),
		cmp.Compare(x.pattern, y.pattern),
		cmp.Compare(x.principal, y.principal),
		cmp.Compare(x.host, y.host),
		cmp.Compare(x.op, y.op),
		cmp.Compare(x.perm, y.perm),
	)
}

// String names a binding in an error: "ALLOW User:alice WRITE on TOPIC
// orders (LITERAL, host *)".
func (b aclBinding) String() string {
	return fmt.Sprintf("%s %s %s on %s %s (%s, host %s)", b.perm, b.principal, b.op, b.typ, b.name, b.pattern, b.host)
}

// aclJSON is a binding in --json output; the values are Kafka's names,
// as in the table.
type aclJSON struct {
	ResourceType string `json:"resource_type"`
	Name         string `json:"name"`
	Pattern      string `json:"pattern"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    string `json:"operation"`
	Permission   string `json:"permission"`
}

func (b aclBinding) json() aclJSON {
	return aclJSON{b.typ.String(), b.name, b.pattern.String(), b.principal, b.host, b.op.String(), b.perm.String()}
}

// aclResultJSON is a binding created or deleted, with what happened.
type aclResultJSON struct {
	aclJSON
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

var aclHeader = []string{"RESOURCE-TYPE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"}

// printBindings prints list's rows.
func printBindings(r *runner, bs []aclBinding) error {
	if r.json {
		out := make([]aclJSON, 0, len(bs))
		for _, b := range bs {
			out = append(out, b.json())
		}
		return printJSON(r.env.Stdout, out)
	}
	t := newTable(r.env.Stdout, aclHeader...)
	for _, b := range bs {
		j := b.json()
		t.row(j.ResourceType, j.Name, j.Pattern, j.Principal, j.Host, j.Operation, j.Permission)
	}
	t.flush()
	return nil
}

// aclResults collects the bindings create and delete acted on.
type aclResults struct {
	rows []aclResultJSON
	errs []error
}

func (rs *aclResults) add(b aclBinding, status string, err error, msg string) {
	row := aclResultJSON{aclJSON: b.json(), Status: status}
	var failed error
	if err != nil {
		row.Status, row.Error = "failed", errorText(err, msg)
		failed = itemError(b.String(), row.Error, err)
	}
	rs.rows = append(rs.rows, row)
	rs.errs = append(rs.errs, failed)
}

// print writes the rows and returns the command's error, as
// itemResults.print does.
func (rs *aclResults) print(r *runner) error {
	if r.json {
		rows := rs.rows
		if rows == nil {
			rows = []aclResultJSON{}
		}
		if err := printJSON(r.env.Stdout, rows); err != nil {
			return err
		}
	} else {
		t := newTable(r.env.Stdout, append(slices.Clone(aclHeader), "STATUS")...)
		for _, row := range rs.rows {
			s := row.Status
			if row.Error != "" {
				s += ": " + row.Error
			}
			t.row(row.ResourceType, row.Name, row.Pattern, row.Principal, row.Host, row.Operation, row.Permission, s)
		}
		t.flush()
	}
	return itemFailure(rs.errs, "ACLs")
}

// ---- errors

// aclError explains an ACL request the cluster refused as a whole; it
// unwraps to the Kafka error, so CLUSTER_AUTHORIZATION_FAILED exits 4.
type aclError struct {
	err error
	msg string
}

func (e *aclError) Error() string { return e.msg }
func (e *aclError) Unwrap() error { return e.err }

// principal names who the command connects as, for messages about what
// it may not do.
func (r *runner) principal() string {
	switch {
	case r.sec.saslOn:
		return "User:" + r.sec.user
	case r.sec.cert != "":
		return "the client certificate's principal"
	}
	return "User:ANONYMOUS"
}

// aclErr turns the errors that concern the whole request — no
// authorizer, not allowed — into a message saying what to do; others
// are wrapped as every command wraps them. change tells whether the
// command changes ACLs (ALTER) or lists them (DESCRIBE).
func (r *runner) aclErr(err error, api string, change bool) error {
	switch {
	case errors.Is(err, kerr.SecurityDisabled):
		return &aclError{err, "the cluster has no authorizer, so it keeps no ACLs (SECURITY_DISABLED): " +
			"set authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer on the brokers"}
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		who := r.principal()
		verb, op := "list", "DESCRIBE"
		if change {
			verb, op = "change", "ALTER"
		}
		return &aclError{err, fmt.Sprintf("%s may not %s ACLs (CLUSTER_AUTHORIZATION_FAILED): that takes %s on the cluster, or being one of the brokers' super.users",
			who, verb, op)}
	}
	return r.wrap(err, api)
}

// requestWide reports whether a per-binding error is one the cluster
// gives every binding of a request alike, and so the command's error.
func requestWide(err error) bool {
	return errors.Is(err, kerr.SecurityDisabled) || errors.Is(err, kerr.ClusterAuthorizationFailed)
}

// ---- flags

// aclFlags are the flags that name bindings: create's, and the filters
// of list and delete.
type aclFlags struct {
	allow, deny, principal, hosts, ops multiFlag
	topics, groups, txnIDs             multiFlag
	cluster, prefixed                  bool
	patternType                        string
}

func (f *aclFlags) declare(fs *flag.FlagSet, create bool) {
	opNames := opList(aclOps)
	if create {
		fs.Var(&f.allow, "allow", "allow `PRINCIPAL` (User:NAME, or NAME; repeatable)")
		fs.Var(&f.deny, "deny", "deny `PRINCIPAL` (repeatable)")
		fs.Var(&f.hosts, "host", "from `HOST` only (repeatable; default *, any host)")
		fs.Var(&f.ops, "operation", "`OP` to allow or deny (repeatable or comma-separated): "+opNames)
		fs.Var(&f.topics, "topic", "on topic `NAME` (repeatable; * is every topic)")
		fs.Var(&f.groups, "group", "on group `NAME` (repeatable; * is every group)")
		fs.Var(&f.txnIDs, "transactional-id", "on transactional ID `NAME` (repeatable; * is every one)")
		fs.BoolVar(&f.cluster, "cluster", false, "on the cluster")
		fs.BoolVar(&f.prefixed, "prefixed", false, "the NAMEs are prefixes: the ACLs cover every topic, group or transactional ID starting with one (the cluster's are literal)")
		fs.StringVar(&f.patternType, "resource-pattern-type", "", "pattern `TYPE` of the NAMEs: literal (default) or prefixed")
		return
	}
	fs.Var(&f.allow, "allow", "ALLOW bindings of `PRINCIPAL` (User:NAME, or NAME; repeatable)")
	fs.Var(&f.deny, "deny", "DENY bindings of `PRINCIPAL` (repeatable)")
	fs.Var(&f.principal, "principal", "bindings of `PRINCIPAL`, ALLOW or DENY (repeatable)")
	fs.Var(&f.hosts, "host", "bindings for `HOST` (repeatable; * is the any-host binding itself)")
	fs.Var(&f.ops, "operation", "bindings of `OP` (repeatable or comma-separated): "+opNames)
	fs.Var(&f.topics, "topic", "bindings on topic `NAME` (repeatable)")
	fs.Var(&f.groups, "group", "bindings on group `NAME` (repeatable)")
	fs.Var(&f.txnIDs, "transactional-id", "bindings on transactional ID `NAME` (repeatable)")
	fs.BoolVar(&f.cluster, "cluster", false, "bindings on the cluster")
	fs.BoolVar(&f.prefixed, "prefixed", false, "the NAMEs select prefixed bindings (same as --resource-pattern-type prefixed)")
	fs.StringVar(&f.patternType, "resource-pattern-type", "", "pattern `TYPE` the NAMEs select: literal (default), prefixed, any (either) or match (every binding that applies to the resource: its literal, * and prefixes); without NAMEs, any")
}

// pattern is the resource pattern type the flags ask for, and whether
// they asked; LITERAL by default, as in kafka-acls.
func (f *aclFlags) pattern(create bool) (kmsg.ACLResourcePatternType, bool, error) {
	pt := kmsg.ACLResourcePatternTypeLiteral
	explicit := f.prefixed || f.patternType != ""
	if f.patternType != "" {
		want := "literal, prefixed, any or match"
		if create {
			want = "literal or prefixed"
		}
		p, err := kmsg.ParseACLResourcePatternType(f.patternType)
		if err != nil || create && p != kmsg.ACLResourcePatternTypeLiteral && p != kmsg.ACLResourcePatternTypePrefixed {
			return 0, false, usagef("--resource-pattern-type %q: want %s", f.patternType, want)
		}
		if f.prefixed && p != kmsg.ACLResourcePatternTypePrefixed {
			return 0, false, usagef("--prefixed contradicts --resource-pattern-type %s", f.patternType)
		}
		pt = p
	}
	if f.prefixed {
		pt = kmsg.ACLResourcePatternTypePrefixed
	}
	return pt, explicit, nil
}

// resources are the names the resource flags give, checked.
type aclResources struct {
	topics, groups, txnIDs []string
	cluster                bool
}

func (f *aclFlags) resources() (aclResources, error) {
	var res aclResources
	var err error
	if res.topics, err = names("topic", f.topics); err != nil {
		return res, err
	}
	if res.groups, err = names("group", f.groups); err != nil {
		return res, err
	}
	if res.txnIDs, err = names("transactional-id", f.txnIDs); err != nil {
		return res, err
	}
	res.cluster = f.cluster
	return res, nil
}

func (res aclResources) named() bool {
	return len(res.topics)+len(res.groups)+len(res.txnIDs) > 0
}

// hostList checks --host.
func (f *aclFlags) hostList() ([]string, error) {
	if slices.Contains(f.hosts, "") {
		return nil, usagef("--host: a host cannot be empty (* is any host)")
	}
	return uniq(f.hosts), nil
}

// filters turns list's and delete's flags into kadm filters (a binding
// matches one when it matches every kind of flag given and any of a
// kind's values), and reports whether any flag narrows the selection
// (a pattern type alone does not count: literal is nearly everything).
func (f *aclFlags) filters() ([]*kadm.ACLBuilder, bool, error) {
	res, err := f.resources()
	if err != nil {
		return nil, false, err
	}
	pt, explicit, err := f.pattern(false)
	if err != nil {
		return nil, false, err
	}
	ops, err := parseOperations(f.ops, true)
	if err != nil {
		return nil, false, err
	}
	hosts, err := f.hostList()
	if err != nil {
		return nil, false, err
	}
	allow, err := principals("allow", f.allow)
	if err != nil {
		return nil, false, err
	}
	deny, err := principals("deny", f.deny)
	if err != nil {
		return nil, false, err
	}
	either, err := principals("principal", f.principal)
	if err != nil {
		return nil, false, err
	}
	allow, deny = uniq(append(allow, either...)), uniq(append(deny, either...))
	narrowed := res.named() || res.cluster || len(allow)+len(deny)+len(hosts) > 0 ||
		slices.ContainsFunc(ops, func(op kmsg.ACLOperation) bool { return op != kmsg.ACLOperationAny })

	who := func(b *kadm.ACLBuilder, pattern kmsg.ACLResourcePatternType) *kadm.ACLBuilder {
		if len(allow)+len(deny) == 0 {
			// Any principal, either permission.
			b.Allow().Deny().AllowHosts(hosts...).DenyHosts(hosts...)
		} else {
			b.MaybeAllow(allow...).MaybeDeny(deny...)
			if len(allow) > 0 {
				b.AllowHosts(hosts...) // none: any host
			}
			if len(deny) > 0 {
				b.DenyHosts(hosts...)
			}
		}
		return b.Operations(ops...).ResourcePatternType(pattern)
	}
	if !res.named() && !res.cluster {
		if !explicit {
			pt = kmsg.ACLResourcePatternTypeAny
		}
		return []*kadm.ACLBuilder{who(kadm.NewACLs().AnyResource(), pt)}, narrowed, nil
	}
	var out []*kadm.ACLBuilder
	if res.named() {
		b := kadm.NewACLs().MaybeTopics(res.topics...).MaybeGroups(res.groups...).MaybeTransactionalIDs(res.txnIDs...)
		out = append(out, who(b, pt))
	}
	if res.cluster {
		out = append(out, who(kadm.NewACLs().Clusters(), clusterPattern(pt)))
	}
	return out, narrowed, nil
}

// clusterPattern is the pattern type of the cluster's bindings: there is
// one cluster, its bindings are literal whatever --prefixed says (as
// kafka-acls does it).
func clusterPattern(pt kmsg.ACLResourcePatternType) kmsg.ACLResourcePatternType {
	if pt == kmsg.ACLResourcePatternTypePrefixed {
		return kmsg.ACLResourcePatternTypeLiteral
	}
	return pt
}

// describeACLs runs the filters and returns the bindings they select,
// each once, sorted.
func (r *runner) describeACLs(ctx context.Context, adm *kadm.Client, filters []*kadm.ACLBuilder, change bool) ([]aclBinding, error) {
	seen := map[aclBinding]bool{}
	var out []aclBinding
	for _, f := range filters {
		res, err := adm.DescribeACLs(ctx, f)
		if err != nil {
			return nil, r.aclErr(err, "DescribeAcls", change)
		}
		for _, d := range res {
			if d.Err != nil {
				if requestWide(d.Err) {
					return nil, r.aclErr(d.Err, "DescribeAcls", change)
				}
				return nil, fmt.Errorf("describing ACLs: %s", errorText(d.Err, d.ErrMessage))
			}
			for _, a := range d.Described {
				b := aclBinding{a.Type, a.Name, a.Pattern, a.Principal, a.Host, a.Operation, a.Permission}
				if !seen[b] {
					seen[b] = true
					out = append(out, b)
				}
			}
		}
	}
	slices.SortFunc(out, compareBindings)
	return out, nil
}

// ---- create

var aclCreateCmd = &command{
	name:    "create",
	args:    "(--allow PRINCIPAL | --deny PRINCIPAL)... (--operation OP | --producer | --consumer) RESOURCE... [flags]",
	summary: "create ACLs",
	help: `Creates ACL bindings: each --allow or --deny principal gets each
--operation on each resource named (--topic, --group, --transactional-id,
--cluster), from each --host (default *, any host). Creating a binding
that exists changes nothing (STATUS exists).

As with kafka-acls, --producer grants WRITE, DESCRIBE and CREATE on the
topics, WRITE and DESCRIBE on the transactional IDs, and with --idempotent
IDEMPOTENT_WRITE on the cluster; --consumer grants READ and DESCRIBE on
the topics and READ on the groups.

Examples:
  gregor acl create --allow alice --operation read,describe --topic orders
  gregor acl create --allow alice --producer --topic orders --idempotent
  gregor acl create --allow billing --consumer --topic orders --group billing
  gregor acl create --allow team-a --operation all --topic team-a. --group team-a. --prefixed
  gregor acl create --deny mallory --host 10.0.0.7 --operation all --topic '*'`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		var f aclFlags
		f.declare(fs, true)
		producer := fs.Bool("producer", false, "grant what a producer needs: WRITE, DESCRIBE, CREATE on the topics; WRITE, DESCRIBE on the transactional IDs")
		consumer := fs.Bool("consumer", false, "grant what a consumer needs: READ, DESCRIBE on the topics; READ on the groups")
		idempotent := fs.Bool("idempotent", false, "with --producer: IDEMPOTENT_WRITE on the cluster too")
		return func(args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (name resources with --topic, --group, --transactional-id or --cluster)", args[0])
			}
			plan, err := f.plan(*producer, *consumer, *idempotent)
			if err != nil {
				return err
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			// The principals' bindings now, to tell "created" from
			// "exists"; "created" when the cluster does not say.
			existed := map[aclBinding]bool{}
			mine := kadm.NewACLs().AnyResource().Operations().ResourcePatternType(kadm.ACLPatternAny).
				MaybeAllow(plan.allow...).MaybeDeny(plan.deny...)
			if len(plan.allow) > 0 {
				mine.AllowHosts()
			}
			if len(plan.deny) > 0 {
				mine.DenyHosts()
			}
			had, err := r.describeACLs(ctx, adm, []*kadm.ACLBuilder{mine}, true)
			if errors.Is(err, kerr.SecurityDisabled) {
				return err
			}
			for _, b := range had {
				existed[b] = true
			}
			type created struct {
				b   aclBinding
				err error
				msg string
			}
			var all []created
			for _, g := range plan.grants {
				res, err := adm.CreateACLs(ctx, plan.builder(g))
				if err != nil {
					return r.aclErr(err, "CreateAcls", true)
				}
				for _, c := range res {
					if requestWide(c.Err) {
						return r.aclErr(c.Err, "CreateAcls", true)
					}
					all = append(all, created{aclBinding{c.Type, c.Name, c.Pattern, c.Principal, c.Host, c.Operation, c.Permission}, c.Err, c.ErrMessage})
				}
			}
			slices.SortFunc(all, func(x, y created) int { return compareBindings(x.b, y.b) })
			var results aclResults
			for _, c := range all {
				status := "created"
				if existed[c.b] {
					status = "exists"
				}
				results.add(c.b, status, c.err, c.msg)
			}
			return results.print(r)
		}
	},
}

// aclGrant is the operations to grant on resources of one type (no
// names for the cluster).
type aclGrant struct {
	typ   kmsg.ACLResourceType
	names []string
	ops   []kmsg.ACLOperation
}

// aclPlan is what create creates: every principal and host, each grant.
type aclPlan struct {
	allow, deny, hosts []string
	pattern            kmsg.ACLResourcePatternType
	grants             []aclGrant
}

// plan checks create's flags and works out the bindings to create.
func (f *aclFlags) plan(producer, consumer, idempotent bool) (*aclPlan, error) {
	p := &aclPlan{}
	var err error
	if p.allow, err = principals("allow", f.allow); err != nil {
		return nil, err
	}
	if p.deny, err = principals("deny", f.deny); err != nil {
		return nil, err
	}
	if p.hosts, err = f.hostList(); err != nil {
		return nil, err
	}
	if len(p.hosts) == 0 {
		p.hosts = []string{"*"}
	}
	if p.pattern, _, err = f.pattern(true); err != nil {
		return nil, err
	}
	res, err := f.resources()
	if err != nil {
		return nil, err
	}
	ops, err := parseOperations(f.ops, false)
	if err != nil {
		return nil, err
	}
	if idempotent && !producer {
		return nil, usagef("--idempotent goes with --producer")
	}

	if producer || consumer {
		which := "--producer"
		if !producer {
			which = "--consumer"
		} else if consumer {
			which = "--producer and --consumer"
		}
		switch {
		case len(ops) > 0:
			return nil, usagef("%s choose the operations: drop --operation, or create those ACLs apart", which)
		case len(p.deny) > 0:
			return nil, usagef("%s allow: use --allow, not --deny", which)
		case len(p.allow) == 0:
			return nil, usagef("%s need --allow PRINCIPAL", which)
		case consumer && (len(res.topics) == 0 || len(res.groups) == 0):
			return nil, usagef("--consumer needs --topic and --group")
		case len(res.topics) == 0:
			return nil, usagef("--producer needs --topic")
		case !consumer && len(res.groups) > 0:
			return nil, usagef("--group goes with --consumer (or with --operation)")
		case !producer && len(res.txnIDs) > 0:
			return nil, usagef("--transactional-id goes with --producer (or with --operation)")
		case res.cluster:
			return nil, usagef("--cluster does not go with %s (--idempotent grants IDEMPOTENT_WRITE on the cluster)", which)
		}
		var topicOps []kmsg.ACLOperation
		if producer {
			topicOps = append(topicOps, kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe, kmsg.ACLOperationCreate)
		}
		if consumer {
			topicOps = append(topicOps, kmsg.ACLOperationRead)
			if !producer {
				topicOps = append(topicOps, kmsg.ACLOperationDescribe)
			}
		}
		p.grants = append(p.grants, aclGrant{kmsg.ACLResourceTypeTopic, res.topics, topicOps})
		if consumer {
			p.grants = append(p.grants, aclGrant{kmsg.ACLResourceTypeGroup, res.groups, []kmsg.ACLOperation{kmsg.ACLOperationRead}})
		}
		if len(res.txnIDs) > 0 {
			p.grants = append(p.grants, aclGrant{kmsg.ACLResourceTypeTransactionalId, res.txnIDs,
				[]kmsg.ACLOperation{kmsg.ACLOperationWrite, kmsg.ACLOperationDescribe}})
		}
		if idempotent {
			p.grants = append(p.grants, aclGrant{kmsg.ACLResourceTypeCluster, nil, []kmsg.ACLOperation{kmsg.ACLOperationIdempotentWrite}})
		}
		return p, nil
	}

	switch {
	case len(p.allow)+len(p.deny) == 0:
		return nil, usagef("give --allow PRINCIPAL or --deny PRINCIPAL")
	case !res.named() && !res.cluster:
		return nil, usagef("name a resource: --topic, --group, --transactional-id or --cluster")
	case len(ops) == 0:
		return nil, usagef("give --operation OP (or --producer, --consumer)")
	}
	for _, g := range []aclGrant{
		{kmsg.ACLResourceTypeTopic, res.topics, ops},
		{kmsg.ACLResourceTypeGroup, res.groups, ops},
		{kmsg.ACLResourceTypeTransactionalId, res.txnIDs, ops},
		{kmsg.ACLResourceTypeCluster, nil, ops},
	} {
		if len(g.names) == 0 && (g.typ != kmsg.ACLResourceTypeCluster || !res.cluster) {
			continue
		}
		for _, op := range ops {
			if valid := aclTypeOps[g.typ]; op != kmsg.ACLOperationAll && !slices.Contains(valid, op) {
				return nil, usagef("--operation %s does not apply to %s, which takes %s",
					opName(op), aclTypeNoun[g.typ], opList(append(slices.Clone(valid), kmsg.ACLOperationAll)))
			}
		}
		p.grants = append(p.grants, g)
	}
	return p, nil
}

// builder is the kadm request for one grant.
func (p *aclPlan) builder(g aclGrant) *kadm.ACLBuilder {
	b := kadm.NewACLs()
	pattern := p.pattern
	switch g.typ {
	case kmsg.ACLResourceTypeTopic:
		b.MaybeTopics(g.names...)
	case kmsg.ACLResourceTypeGroup:
		b.MaybeGroups(g.names...)
	case kmsg.ACLResourceTypeTransactionalId:
		b.MaybeTransactionalIDs(g.names...)
	case kmsg.ACLResourceTypeCluster:
		b.Clusters()
		pattern = clusterPattern(pattern)
	}
	b.MaybeAllow(p.allow...).MaybeDeny(p.deny...)
	if len(p.allow) > 0 {
		b.AllowHosts(p.hosts...)
	}
	if len(p.deny) > 0 {
		b.DenyHosts(p.hosts...)
	}
	return b.Operations(g.ops...).ResourcePatternType(pattern)
}

// ---- list

var aclListCmd = &command{
	name:    "list",
	args:    "[flags]",
	summary: "list ACLs, all or those the flags select",
	help: `Lists ACL bindings: all of them, or those the flags select. A binding
is listed when it matches every kind of flag given, and any value of a
repeated one. NAMEs select the literal bindings of exactly that name;
--prefixed the prefixed ones, --resource-pattern-type any both, and
--resource-pattern-type match every binding that applies to the
resource (its literal name, the * wildcard, and the prefixes of its
name). The cluster's bindings are always literal.

Examples:
  gregor acl list
  gregor acl list --principal alice
  gregor acl list --topic orders --resource-pattern-type match
  gregor acl list --json | jq -r '.[] | select(.permission=="DENY") | .principal'`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		var f aclFlags
		f.declare(fs, false)
		return func(args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (select resources with --topic, --group, --transactional-id or --cluster)", args[0])
			}
			filters, _, err := f.filters()
			if err != nil {
				return err
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			found, err := r.describeACLs(ctx, adm, filters, false)
			if err != nil {
				return err
			}
			return printBindings(r, found)
		}
	},
}

// ---- delete

var aclDeleteCmd = &command{
	name:    "delete",
	args:    "(FILTER... | --all) [flags]",
	summary: "delete the ACLs the flags select",
	help: `Deletes the ACL bindings the flags select, as list selects them: run
list, or delete --dry-run, with the same flags first. With no resource,
principal, host or operation to select by it refuses to run: deleting
every ACL locks out everybody but the super users. --all does that on
purpose.

Examples:
  gregor acl delete --allow alice --operation write --topic orders
  gregor acl delete --principal alice              # all of alice's
  gregor acl delete --topic orders --resource-pattern-type match --dry-run
  gregor acl delete --all`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		var f aclFlags
		f.declare(fs, false)
		all := fs.Bool("all", false, "delete every ACL (takes no filters)")
		dry := fs.Bool("dry-run", false, "show the ACLs that would be deleted, delete nothing")
		return func(args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (select resources with --topic, --group, --transactional-id or --cluster)", args[0])
			}
			filters, narrowed, err := f.filters()
			if err != nil {
				return err
			}
			switch {
			case *all && (narrowed || f.prefixed || f.patternType != ""):
				return usagef("--all deletes every ACL: it takes no filters")
			case !*all && !narrowed:
				return usagef("select the ACLs to delete (--topic, --group, --transactional-id, --cluster, --allow, --deny, --principal, --host, --operation), or give --all to delete every one")
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			var results aclResults
			if *dry {
				found, err := r.describeACLs(ctx, adm, filters, false)
				if err != nil {
					return err
				}
				for _, b := range found {
					results.add(b, "would delete", nil, "")
				}
				return results.print(r)
			}
			type deleted struct {
				b   aclBinding
				err error
				msg string
			}
			var gone []deleted
			seen := map[aclBinding]bool{}
			for _, flt := range filters {
				res, err := adm.DeleteACLs(ctx, flt)
				if err != nil {
					return r.aclErr(err, "DeleteAcls", true)
				}
				for _, d := range res {
					if d.Err != nil {
						if requestWide(d.Err) {
							return r.aclErr(d.Err, "DeleteAcls", true)
						}
						return fmt.Errorf("deleting ACLs: %s", errorText(d.Err, d.ErrMessage))
					}
					for _, m := range d.Deleted {
						b := aclBinding{m.Type, m.Name, m.Pattern, m.Principal, m.Host, m.Operation, m.Permission}
						if !seen[b] {
							seen[b] = true
							gone = append(gone, deleted{b, m.Err, m.ErrMessage})
						}
					}
				}
			}
			slices.SortFunc(gone, func(x, y deleted) int { return compareBindings(x.b, y.b) })
			for _, d := range gone {
				results.add(d.b, "deleted", d.err, d.msg)
			}
			return results.print(r)
		}
	},
}
