package cli

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var quotaCmd = &command{
	name:    "quota",
	summary: "set, list and delete client quotas (byte rates)",
	help: `Manage client quotas, as kafka-configs --entity-type users|clients does
(KIP-546: DescribeClientQuotas, AlterClientQuotas). A quota caps the bytes
per second a client may produce (producer_byte_rate) or fetch
(consumer_byte_rate); brokers throttle a client over it. Quotas are set
on an entity: a user (the principal's name: NAME of User:NAME, ANONYMOUS
without authentication), a client ID, or a user and a client ID
together, each named or <default> (--user-default, --client-default),
which covers those without a quota of their own. For a client, the most
specific entity that sets a key applies, in Kafka's order: user=U,
client-id=C; user=U, client-id=<default>; user=U; the same three with
user=<default>; client-id=C; client-id=<default>. Listing quotas takes
DESCRIBE_CONFIGS on the cluster, changing them ALTER_CONFIGS, or being
one of the brokers' super.users.`,
	sub: []*command{quotaSetCmd, quotaListCmd, quotaDeleteCmd},
}

// ---- vocabulary

// Entity types and the quota keys the commands set.
const (
	quotaUser     = "user"
	quotaClientID = "client-id"

	producerByteRate = "producer_byte_rate"
	consumerByteRate = "consumer_byte_rate"
)

// maxExactRate is the largest rate the protocol carries exactly: quota
// values are float64s on the wire.
const maxExactRate = 1 << 53

// quotaTypeRank orders entity types: user, client-id, then others (a
// cluster may also keep ip quotas) by name.
func quotaTypeRank(typ string) int {
	switch typ {
	case quotaUser:
		return 0
	case quotaClientID:
		return 1
	}
	return 2
}

// canonical returns the entity's components in the order they print:
// user first, then client-id.
func canonical(e kadm.ClientQuotaEntity) kadm.ClientQuotaEntity {
	out := slices.Clone(e)
	slices.SortStableFunc(out, func(x, y kadm.ClientQuotaEntityComponent) int {
		return cmp.Or(cmp.Compare(quotaTypeRank(x.Type), quotaTypeRank(y.Type)), cmp.Compare(x.Type, y.Type))
	})
	return out
}

// entityName renders an entity as the ENTITY column shows it:
// "user=alice, client-id=<default>".
func entityName(e kadm.ClientQuotaEntity) string {
	parts := make([]string, 0, len(e))
	for _, c := range canonical(e) {
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

// entityComponents renders an entity for --json: each type's name, null
// for <default> (as the protocol and Kafka's Admin API have it).
func entityComponents(e kadm.ClientQuotaEntity) map[string]*string {
	out := make(map[string]*string, len(e))
	for _, c := range e {
		out[c.Type] = c.Name
	}
	return out
}

// compareEntities orders entities so that a user's quotas print
// together: by user (<default> before names), the user alone before
// with a client ID; entities without a user after those with one.
func compareEntities(x, y kadm.ClientQuotaEntity) int {
	x, y = canonical(x), canonical(y)
	for i := range min(len(x), len(y)) {
		a, b := x[i], y[i]
		if c := cmp.Or(
			cmp.Compare(quotaTypeRank(a.Type), quotaTypeRank(b.Type)),
			cmp.Compare(a.Type, b.Type),
			compareBool(a.Name != nil, b.Name != nil),
		); c != 0 {
			return c
		}
		if a.Name != nil {
			if c := cmp.Compare(*a.Name, *b.Name); c != 0 {
				return c
			}
		}
	}
	return cmp.Compare(len(x), len(y))
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// sameEntity reports whether two entities have the same components, in
// any order.
func sameEntity(x, y kadm.ClientQuotaEntity) bool {
	if len(x) != len(y) {
		return false
	}
	return compareEntities(x, y) == 0
}

// quotaValue renders a value for the table: a byte rate as people read
// it ("1.0 MiB/s"), another key's value (a cluster may keep
// request_percentage and others) as the number it is.
func quotaValue(key string, v float64) string {
	if strings.HasSuffix(key, "_byte_rate") && v >= 0 && v < math.MaxInt64 && v == math.Trunc(v) {
		return humanBytes(int64(v)) + "/s"
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// ---- flags

// quotaFlags name an entity: set's and delete's, and list's filter.
type quotaFlags struct {
	user, clientID             multiFlag
	userDefault, clientDefault bool
}

func (f *quotaFlags) declare(fs *flag.FlagSet, filter bool) {
	if filter {
		fs.Var(&f.user, "user", "quotas of user `NAME` (and of its client IDs, without --strict)")
		fs.BoolVar(&f.userDefault, "user-default", false, "the default user's quotas (and those of its client IDs, without --strict)")
		fs.Var(&f.clientID, "client-id", "quotas of client ID `NAME` (and of users' with it, without --strict)")
		fs.BoolVar(&f.clientDefault, "client-default", false, "the default client ID's quotas (and users' with it, without --strict)")
		return
	}
	fs.Var(&f.user, "user", "the quota of user `NAME` (the principal's name; a User: prefix is dropped)")
	fs.BoolVar(&f.userDefault, "user-default", false, "the default quota of users: those without one of their own")
	fs.Var(&f.clientID, "client-id", "the quota of client ID `NAME`")
	fs.BoolVar(&f.clientDefault, "client-default", false, "the default quota of client IDs: those without one of their own")
}

// component checks one entity type's pair of flags; nil when neither
// was given.
func component(typ, flagName string, names multiFlag, def bool) (*kadm.ClientQuotaEntityComponent, error) {
	switch {
	case len(names) > 1:
		return nil, usagef("--%s given %d times: an entity has one %s", flagName, len(names), typ)
	case len(names) == 1 && def:
		return nil, usagef("--%s and --%s-default contradict: give one", flagName, strings.TrimSuffix(flagName, "-id"))
	case def:
		return &kadm.ClientQuotaEntityComponent{Type: typ}, nil
	case len(names) == 0:
		return nil, nil
	}
	name := names[0]
	if typ == quotaUser {
		name = strings.TrimPrefix(name, "User:")
	}
	if name == "" {
		return nil, usagef("--%s: a name cannot be empty (--%s-default is the default one)", flagName, strings.TrimSuffix(flagName, "-id"))
	}
	return &kadm.ClientQuotaEntityComponent{Type: typ, Name: &name}, nil
}

// entity is the entity the flags name, user first; none when no entity
// flag was given.
func (f *quotaFlags) entity() (kadm.ClientQuotaEntity, error) {
	var e kadm.ClientQuotaEntity
	for _, c := range []struct {
		typ, flag string
		names     multiFlag
		def       bool
	}{
		{quotaUser, "user", f.user, f.userDefault},
		{quotaClientID, "client-id", f.clientID, f.clientDefault},
	} {
		comp, err := component(c.typ, c.flag, c.names, c.def)
		if err != nil {
			return nil, err
		}
		if comp != nil {
			e = append(e, *comp)
		}
	}
	return e, nil
}

// required is entity for set and delete, which need one.
func (f *quotaFlags) required() (kadm.ClientQuotaEntity, error) {
	e, err := f.entity()
	if err == nil && len(e) == 0 {
		err = usagef("name the entity: --user NAME or --user-default, --client-id NAME or --client-default, or a user and a client ID")
	}
	return e, err
}

// describeComponents is the DescribeClientQuotas filter matching an
// entity's components exactly.
func describeComponents(e kadm.ClientQuotaEntity) []kadm.DescribeClientQuotaComponent {
	var out []kadm.DescribeClientQuotaComponent
	for _, c := range e {
		d := kadm.DescribeClientQuotaComponent{Type: c.Type, MatchName: c.Name, MatchType: kmsg.QuotasMatchTypeExact}
		if c.Name == nil {
			d.MatchType = kmsg.QuotasMatchTypeDefault
		}
		out = append(out, d)
	}
	return out
}

// parseRate checks a --*-byte-rate value: a whole number of bytes per
// second, given once. Whether it is a rate the cluster accepts (Gregor
// wants one above 0) is the cluster's to say.
func parseRate(flagName string, vals multiFlag) (*float64, error) {
	switch len(vals) {
	case 0:
		return nil, nil
	case 1:
	default:
		return nil, usagef("--%s given %d times: give it once", flagName, len(vals))
	}
	n, err := strconv.ParseInt(strings.TrimSpace(vals[0]), 10, 64)
	if err != nil {
		return nil, usagef("--%s %q: want a whole number of bytes per second (no units: 1 MiB/s is 1048576)", flagName, vals[0])
	}
	if n > maxExactRate || n < -maxExactRate {
		return nil, usagef("--%s %d: want at most %d bytes per second (quotas are float64s on the wire)", flagName, n, int64(maxExactRate))
	}
	v := float64(n)
	return &v, nil
}

// ---- output

// quotaJSON is one key of an entity in list --json: ENTITY as in the
// table, the entity's components (a null name is <default>), and the
// exact value.
type quotaJSON struct {
	Entity     string             `json:"entity"`
	Components map[string]*string `json:"components"`
	Key        string             `json:"key"`
	Value      float64            `json:"value"`
}

// quotaChangeJSON is one key set or deleted: its value before (null when
// unset or unknown) and after (null when deleted), and what happened.
type quotaChangeJSON struct {
	Entity     string             `json:"entity"`
	Components map[string]*string `json:"components"`
	Key        string             `json:"key"`
	Old        *float64           `json:"old"`
	New        *float64           `json:"new"`
	Status     string             `json:"status"`
	Error      string             `json:"error,omitempty"`
}

// printChanges writes set's and delete's rows and returns the command's
// error: the entity's, as itemFailure makes it (one entity, one error,
// however many keys).
func printChanges(r *runner, rows []quotaChangeJSON, refusal error) error {
	if r.json {
		if err := printJSON(r.env.Stdout, rows); err != nil {
			return err
		}
	} else {
		t := newTable(r.env.Stdout, "ENTITY", "KEY", "OLD", "NEW", "STATUS")
		for _, row := range rows {
			was, now := "-", "-"
			if row.Old != nil {
				was = quotaValue(row.Key, *row.Old)
			}
			if row.New != nil {
				now = quotaValue(row.Key, *row.New)
			}
			s := row.Status
			if row.Error != "" {
				s += ": " + row.Error
			}
			t.row(row.Entity, row.Key, was, now, s)
		}
		t.flush()
	}
	return itemFailure([]error{refusal}, "entities")
}

// ---- errors

// quotaError explains a quota request the cluster refused as a whole; it
// unwraps to the Kafka error, so CLUSTER_AUTHORIZATION_FAILED exits 4.
type quotaError struct {
	err error
	msg string
}

func (e *quotaError) Error() string { return e.msg }
func (e *quotaError) Unwrap() error { return e.err }

// quotaErr says what to do about not being allowed; other errors are
// wrapped as every command wraps them. change tells whether the command
// changes quotas (ALTER_CONFIGS) or lists them (DESCRIBE_CONFIGS).
func (r *runner) quotaErr(err error, api string, change bool) error {
	if errors.Is(err, kerr.ClusterAuthorizationFailed) {
		verb, op := "list", "DESCRIBE_CONFIGS"
		if change {
			verb, op = "change", "ALTER_CONFIGS"
		}
		return &quotaError{err, fmt.Sprintf("%s may not %s client quotas (CLUSTER_AUTHORIZATION_FAILED): that takes %s on the cluster, or being one of the brokers' super.users",
			r.principal(), verb, op)}
	}
	return r.wrap(err, api)
}

// quotasOf returns the entity's quotas now, to tell what a change
// changes; nil and an error when they cannot be described (the change
// may still be allowed: ALTER_CONFIGS without DESCRIBE_CONFIGS).
func quotasOf(ctx context.Context, adm *kadm.Client, e kadm.ClientQuotaEntity) (map[string]float64, error) {
	described, err := adm.DescribeClientQuotas(ctx, true, describeComponents(e))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, q := range described {
		if sameEntity(q.Entity, e) {
			for _, v := range q.Values {
				out[v.Key] = v.Value
			}
		}
	}
	return out, nil
}

// alterQuotas sends one entity's ops (validates them, dry). The cluster
// refusing the entity (INVALID_REQUEST) is its refusal: the text for its
// rows and the entity's error for printChanges. err is the command's
// error: it may not change quotas at all, or got no answer.
func (r *runner) alterQuotas(ctx context.Context, adm *kadm.Client, dry bool, e kadm.ClientQuotaEntity, ops []kadm.AlterClientQuotaOp) (text string, refusal, err error) {
	alter := adm.AlterClientQuotas
	if dry {
		alter = adm.ValidateAlterClientQuotas
	}
	res, err := alter(ctx, []kadm.AlterClientQuotaEntry{{Entity: e, Ops: ops}})
	if err != nil {
		return "", nil, r.quotaErr(err, "AlterClientQuotas", true)
	}
	var got *kadm.AlteredClientQuota
	for i := range res {
		if sameEntity(res[i].Entity, e) {
			got = &res[i]
		}
	}
	switch {
	case got == nil:
		return "", nil, fmt.Errorf("%s: no answer from the cluster", entityName(e))
	case errors.Is(got.Err, kerr.ClusterAuthorizationFailed):
		return "", nil, r.quotaErr(got.Err, "AlterClientQuotas", true)
	case got.Err != nil:
		text = errorText(got.Err, got.ErrMessage)
		return text, itemError(entityName(e), text, got.Err), nil
	}
	return "", nil, nil
}

// ---- set

var quotaSetCmd = &command{
	name:    "set",
	args:    "ENTITY (--producer-byte-rate N | --consumer-byte-rate N)... [flags]",
	summary: "set byte-rate quotas of a user, a client ID or both",
	help: `Sets quotas of one entity, named by --user NAME or --user-default,
--client-id NAME or --client-default, or a user and a client ID together.
Rates are whole bytes per second (1048576 is 1 MiB/s). Keys not given
keep their values; STATUS tells, for each key given, whether it was
added, changed or unchanged.

Examples:
  gregor quota set --user alice --producer-byte-rate 1048576
  gregor quota set --client-id billing --consumer-byte-rate 10485760 --producer-byte-rate 524288
  gregor quota set --user alice --client-id billing --producer-byte-rate 2097152
  gregor quota set --user-default --producer-byte-rate 262144 --dry-run
  gregor quota set --user-default --client-default --consumer-byte-rate 5242880`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		var f quotaFlags
		f.declare(fs, false)
		var prodFlag, consFlag multiFlag
		fs.Var(&prodFlag, "producer-byte-rate", "cap producing at `N` bytes per second")
		fs.Var(&consFlag, "consumer-byte-rate", "cap fetching at `N` bytes per second")
		dry := fs.Bool("dry-run", false, "validate and show what would change; change nothing")
		return func(args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (name the entity with --user, --user-default, --client-id or --client-default)", args[0])
			}
			e, err := f.required()
			if err != nil {
				return err
			}
			prod, err := parseRate("producer-byte-rate", prodFlag)
			if err != nil {
				return err
			}
			cons, err := parseRate("consumer-byte-rate", consFlag)
			if err != nil {
				return err
			}
			var ops []kadm.AlterClientQuotaOp // in key order, as rows print
			if cons != nil {
				ops = append(ops, kadm.AlterClientQuotaOp{Key: consumerByteRate, Value: *cons})
			}
			if prod != nil {
				ops = append(ops, kadm.AlterClientQuotaOp{Key: producerByteRate, Value: *prod})
			}
			if len(ops) == 0 {
				return usagef("nothing to set: give --producer-byte-rate N, --consumer-byte-rate N or both")
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			old, oldErr := quotasOf(ctx, adm, e)
			refusedText, refusal, err := r.alterQuotas(ctx, adm, *dry, e, ops)
			if err != nil {
				return err
			}
			var rows []quotaChangeJSON
			for _, op := range ops {
				row := quotaChangeJSON{Entity: entityName(e), Components: entityComponents(e), Key: op.Key, New: &op.Value}
				was, had := old[op.Key]
				if had {
					row.Old = &was
				}
				switch {
				case refusal != nil:
					row.Status, row.Error = "failed", refusedText
				case oldErr != nil && *dry:
					row.Status = "valid"
				case oldErr != nil:
					row.Status = "set"
				case had && was == op.Value:
					row.Status = "unchanged"
				case had && *dry:
					row.Status = "would change"
				case had:
					row.Status = "changed"
				case *dry:
					row.Status = "would add"
				default:
					row.Status = "added"
				}
				rows = append(rows, row)
			}
			return printChanges(r, rows, refusal)
		}
	},
}

// ---- list

var quotaListCmd = &command{
	name:    "list",
	args:    "[--user NAME | --user-default] [--client-id NAME | --client-default] [flags]",
	summary: "list client quotas, all or an entity's",
	help: `Lists client quotas, one row per entity and key, sorted by entity (a
user's together) and key; VALUE is the rate as people read it, exact in
--json. Without flags, every quota. --user and --client-id (or their
defaults) select the entities with that user and that client ID: with
--strict, only the entity they name exactly, not those that combine it
with a client ID or a user.

Examples:
  gregor quota list
  gregor quota list --user alice                  # alice's, alone and with client IDs
  gregor quota list --user alice --strict         # the quota of user=alice only
  gregor quota list --client-default
  gregor quota list --json | jq -r '.[] | select(.components.user == "alice") | "\(.key) \(.value)"'`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		var f quotaFlags
		f.declare(fs, true)
		strict := fs.Bool("strict", false, "only the entity the flags name exactly")
		return func(args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (select entities with --user, --user-default, --client-id or --client-default)", args[0])
			}
			e, err := f.entity()
			if err != nil {
				return err
			}
			if *strict && len(e) == 0 {
				return usagef("--strict goes with --user, --user-default, --client-id or --client-default")
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			described, err := adm.DescribeClientQuotas(ctx, *strict, describeComponents(e))
			if err != nil {
				return r.quotaErr(err, "DescribeClientQuotas", false)
			}
			slices.SortStableFunc(described, func(x, y kadm.DescribedClientQuota) int { return compareEntities(x.Entity, y.Entity) })
			rows := []quotaJSON{}
			for _, q := range described {
				vals := slices.Clone(q.Values)
				slices.SortStableFunc(vals, func(x, y kadm.ClientQuotaValue) int { return cmp.Compare(x.Key, y.Key) })
				for _, v := range vals {
					rows = append(rows, quotaJSON{entityName(q.Entity), entityComponents(q.Entity), v.Key, v.Value})
				}
			}
			if r.json {
				return printJSON(r.env.Stdout, rows)
			}
			t := newTable(r.env.Stdout, "ENTITY", "KEY", "VALUE")
			for _, row := range rows {
				t.row(row.Entity, row.Key, quotaValue(row.Key, row.Value))
			}
			t.flush()
			return nil
		}
	},
}

// ---- delete

var quotaDeleteCmd = &command{
	name:    "delete",
	args:    "ENTITY [--producer-byte-rate] [--consumer-byte-rate] [flags]",
	summary: "delete byte-rate quotas of an entity",
	help: `Deletes quotas of one entity, named as set names it: the keys given, or
both byte rates when none is. Clients it covered fall back to the next
entity that sets the key (see gregor quota --help), or run unthrottled.
A key that was not set is reported absent, which is no error.

Examples:
  gregor quota delete --user alice                         # both rates
  gregor quota delete --client-id billing --consumer-byte-rate
  gregor quota delete --user alice --client-default --dry-run`,
	setup: func(r *runner, fs *flag.FlagSet) func([]string) error {
		var f quotaFlags
		f.declare(fs, false)
		prod := fs.Bool("producer-byte-rate", false, "delete the producer byte rate")
		cons := fs.Bool("consumer-byte-rate", false, "delete the consumer byte rate")
		dry := fs.Bool("dry-run", false, "validate and show what would be deleted; delete nothing")
		return func(args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %q (name the entity with --user, --user-default, --client-id or --client-default)", args[0])
			}
			e, err := f.required()
			if err != nil {
				return err
			}
			var ops []kadm.AlterClientQuotaOp
			if *cons || !*prod {
				ops = append(ops, kadm.AlterClientQuotaOp{Key: consumerByteRate, Remove: true})
			}
			if *prod || !*cons {
				ops = append(ops, kadm.AlterClientQuotaOp{Key: producerByteRate, Remove: true})
			}
			adm, ctx, done, err := r.admin()
			if err != nil {
				return err
			}
			defer done()
			old, oldErr := quotasOf(ctx, adm, e)
			refusedText, refusal, err := r.alterQuotas(ctx, adm, *dry, e, ops)
			if err != nil {
				return err
			}
			var rows []quotaChangeJSON
			for _, op := range ops {
				row := quotaChangeJSON{Entity: entityName(e), Components: entityComponents(e), Key: op.Key}
				was, had := old[op.Key]
				if had {
					row.Old = &was
				}
				switch {
				case refusal != nil:
					row.Status, row.Error = "failed", refusedText
				case oldErr != nil && *dry:
					row.Status = "valid"
				case oldErr != nil:
					row.Status = "deleted"
				case !had:
					row.Status = "absent"
				case *dry:
					row.Status = "would delete"
				default:
					row.Status = "deleted"
				}
				rows = append(rows, row)
			}
			return printChanges(r, rows, refusal)
		}
	},
}
