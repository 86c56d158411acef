package broker

import (
	"cmp"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/auth"
	"github.com/gregor-streaming/gregor/internal/config"
	"github.com/gregor-streaming/gregor/internal/metadata"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// DescribeAcls, CreateAcls, DeleteAcls: v1-3 (v0 went with Kafka 4,
// KIP-896). The bindings live in the metadata log (AclRecord), as in
// KRaft; with authorizer.class.name set, every handler asks authorize
// before acting (Kafka's KafkaApis checks, handler by handler).
func init() {
	registerSync(29, 1, 3, (*Broker).handleDescribeAcls)
	registerSync(30, 1, 3, (*Broker).handleCreateAcls)
	registerSync(31, 1, 3, (*Broker).handleDeleteAcls)
}

// authzState is the authorizer built from one image's ACLs.
type authzState struct {
	changed int64
	a       *auth.Authorizer
}

// authorizer returns the authorizer for the current ACLs, or nil when
// authorization is off (no authorizer.class.name).
func (b *Broker) authorizer() *auth.Authorizer {
	if !b.authzOn {
		return nil
	}
	img := b.meta.Image()
	if st := b.authz.Load(); st != nil && st.changed == img.AclsChanged {
		return st.a
	}
	bindings := make([]auth.Binding, 0, len(img.Acls))
	for _, r := range img.Acls {
		bindings = append(bindings, bindingOf(r))
	}
	st := &authzState{changed: img.AclsChanged, a: auth.NewAuthorizer(bindings, b.superUsers, b.static.Bool("allow.everyone.if.no.acl.found"))}
	b.authz.Store(st)
	return st.a
}

// initAuthorizer reads the static authorizer settings.
func (b *Broker) initAuthorizer() error {
	b.authzOn = b.static.String("authorizer.class.name") != ""
	users, err := config.Principals(b.static.String("super.users"))
	b.superUsers = users
	return err
}

// authorized reports whether the request's client may perform op on
// the resource; always true without an authorizer.
func (b *Broker) authorized(req *wire.Request, op auth.Operation, typ auth.Resource, name string) bool {
	a := b.authorizer()
	if a == nil {
		return true
	}
	ok := a.Authorize(req.Client.Principal(), req.Client.Host, op, typ, name)
	if !ok {
		// Kafka logs denials to kafka.authorizer.logger; here at
		// debug level (a client retrying a refused request would
		// flood INFO).
		b.log.Debug("authorization denied", "principal", req.Client.Principal(), "host", req.Client.Host,
			"operation", op, "resource_type", typ, "resource", name, "api", kmsg.NameForKey(req.Key))
	}
	return ok
}

// authorizedCluster reports whether the client may perform op on the
// cluster.
func (b *Broker) authorizedCluster(req *wire.Request, op auth.Operation) bool {
	return b.authorized(req, op, kmsg.ACLResourceTypeCluster, auth.ClusterResource)
}

// authorizedTopic reports whether the client may perform op on topic.
func (b *Broker) authorizedTopic(req *wire.Request, op auth.Operation, topic string) bool {
	return b.authorized(req, op, kmsg.ACLResourceTypeTopic, topic)
}

// authorizedCreate reports whether the client may create topic: CREATE
// on the cluster or on the topic.
func (b *Broker) authorizedCreate(req *wire.Request, topic string) bool {
	return b.authorizedCluster(req, kmsg.ACLOperationCreate) || b.authorizedTopic(req, kmsg.ACLOperationCreate, topic)
}

// topicCheck returns a function reporting whether the client may
// perform op on a topic, remembering the last answer: a request names
// the same topic for many partitions in a row.
func (b *Broker) topicCheck(req *wire.Request, op auth.Operation) func(topic string) bool {
	a := b.authorizer()
	if a == nil {
		return allowAll
	}
	var last string
	var lastOK, known bool
	return func(topic string) bool {
		if !known || topic != last {
			last, lastOK, known = topic, a.Authorize(req.Client.Principal(), req.Client.Host, op, kmsg.ACLResourceTypeTopic, topic), true
		}
		return lastOK
	}
}

func allowAll(string) bool { return true }

// authorizedGroup reports whether the client may perform op on group.
func (b *Broker) authorizedGroup(req *wire.Request, op auth.Operation, group string) bool {
	return b.authorized(req, op, kmsg.ACLResourceTypeGroup, group)
}

// authorizedTxnID reports whether the client may perform op on a
// transactional ID.
func (b *Broker) authorizedTxnID(req *wire.Request, op auth.Operation, id string) bool {
	return b.authorized(req, op, kmsg.ACLResourceTypeTransactionalId, id)
}

// authorizedIdempotent reports whether the client may produce
// idempotently: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic
// (KIP-679).
func (b *Broker) authorizedIdempotent(req *wire.Request) bool {
	a := b.authorizer()
	if a == nil {
		return true
	}
	p, h := req.Client.Principal(), req.Client.Host
	return a.Authorize(p, h, kmsg.ACLOperationIdempotentWrite, kmsg.ACLResourceTypeCluster, auth.ClusterResource) ||
		a.AuthorizeAny(p, h, kmsg.ACLOperationWrite, kmsg.ACLResourceTypeTopic)
}

// authorizedOps is the bit set of the operations the client may perform
// on a resource, for the authorized-operations fields of Metadata,
// DescribeGroups and DescribeCluster (bit n is operation n): those of
// Kafka's AclEntry.supportedOperations for the type. Without an
// authorizer all of them; none to a client that may not DESCRIBE it.
func (b *Broker) authorizedOps(req *wire.Request, typ auth.Resource, name string) int32 {
	// One authorizer for every operation, and no denial logged: this
	// describes what the client may do, it refuses nothing.
	a := b.authorizer()
	p, h := req.Client.Principal(), req.Client.Host
	allowed := func(op auth.Operation) bool { return a == nil || a.Authorize(p, h, op, typ, name) }
	if !allowed(kmsg.ACLOperationDescribe) {
		return 0
	}
	var bits int32
	for _, op := range supportedOps[typ] {
		if allowed(op) {
			bits |= 1 << op
		}
	}
	return bits
}

// supportedOps are the operations each resource type has (Kafka's
// AclEntry.supportedOperations), for authorizedOps.
var supportedOps = map[auth.Resource][]auth.Operation{
	kmsg.ACLResourceTypeTopic: {kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate, kmsg.ACLOperationDelete,
		kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe, kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs},
	kmsg.ACLResourceTypeGroup: {kmsg.ACLOperationRead, kmsg.ACLOperationDelete, kmsg.ACLOperationDescribe},
	kmsg.ACLResourceTypeCluster: {kmsg.ACLOperationCreate, kmsg.ACLOperationClusterAction, kmsg.ACLOperationDescribeConfigs,
		kmsg.ACLOperationAlterConfigs, kmsg.ACLOperationIdempotentWrite, kmsg.ACLOperationAlter, kmsg.ACLOperationDescribe},
}

func bindingOf(r *metadata.AclRecord) auth.Binding {
	return auth.Binding{
		Resource:   auth.Resource(r.ResourceType),
		Name:       r.ResourceName,
		Pattern:    auth.Pattern(r.PatternType),
		Principal:  r.Principal,
		Host:       r.Host,
		Operation:  auth.Operation(r.Operation),
		Permission: auth.Permission(r.Permission),
	}
}

func aclRecordOf(id metadata.UUID, bd auth.Binding) *metadata.AclRecord {
	return &metadata.AclRecord{
		ID:           id,
		ResourceType: int8(bd.Resource),
		ResourceName: bd.Name,
		PatternType:  int8(bd.Pattern),
		Principal:    bd.Principal,
		Host:         bd.Host,
		Operation:    int8(bd.Operation),
		Permission:   int8(bd.Permission),
	}
}

// securityDisabled is Kafka's answer to the ACL APIs without an
// authorizer.
const securityDisabledMsg = "No Authorizer is configured on the broker"

func (b *Broker) handleCreateAcls(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(r.Creations))
	fail := func(i int, code *kerr.Error, msg string) {
		resp.Results[i].ErrorCode = code.Code
		resp.Results[i].ErrorMessage = kmsg.StringPtr(msg)
	}
	var todo []int
	var bindings []auth.Binding
	for i, c := range r.Creations {
		resp.Results[i] = kmsg.NewCreateACLsResponseResult()
		bd := auth.Binding{
			Resource: c.ResourceType, Name: c.ResourceName, Pattern: c.ResourcePatternType,
			Principal: c.Principal, Host: c.Host, Operation: c.Operation, Permission: c.PermissionType,
		}
		switch {
		case !b.authzOn:
			fail(i, kerr.SecurityDisabled, securityDisabledMsg)
		case !b.authorizedCluster(req, kmsg.ACLOperationAlter):
			fail(i, kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description)
		default:
			if err := bd.Validate(); err != nil {
				fail(i, kerr.InvalidRequest, err.Error())
				continue
			}
			todo = append(todo, i)
			bindings = append(bindings, bd)
		}
	}
	if len(todo) == 0 {
		return resp
	}
	_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		// Creating a binding that exists is a success that adds
		// nothing, as in Kafka.
		have := map[auth.Binding]bool{}
		for _, rec := range img.Acls {
			have[bindingOf(rec)] = true
		}
		var recs []metadata.Record
		for _, bd := range bindings {
			if have[bd] {
				continue
			}
			have[bd] = true
			recs = append(recs, metadata.Record{Acl: aclRecordOf(metadata.NewUUID(), bd)})
		}
		return recs, nil
	})
	if err != nil {
		for _, i := range todo {
			fail(i, kerr.UnknownServerError, err.Error())
		}
		return resp
	}
	for _, bd := range bindings {
		b.log.Info("ACL created", "acl", bd.String(), "by", req.Client.Principal())
	}
	return resp
}

func filterOf(resource auth.Resource, name *string, pattern auth.Pattern, principal, host *string, op auth.Operation, perm auth.Permission) auth.Filter {
	return auth.Filter{Resource: resource, Name: name, Pattern: pattern, Principal: principal, Host: host, Operation: op, Permission: perm}
}

// sortedBindings returns the image's bindings in a stable order: by
// resource, then by the rest.
func sortedBindings(img *metadata.Image) []*metadata.AclRecord {
	recs := make([]*metadata.AclRecord, 0, len(img.Acls))
	for _, r := range img.Acls {
		recs = append(recs, r)
	}
	slices.SortFunc(recs, func(x, y *metadata.AclRecord) int {
		return cmp.Or(
			cmp.Compare(x.ResourceType, y.ResourceType),
			cmp.Compare(x.PatternType, y.PatternType),
			cmp.Compare(x.ResourceName, y.ResourceName),
			cmp.Compare(x.Principal, y.Principal),
			cmp.Compare(x.Host, y.Host),
			cmp.Compare(x.Operation, y.Operation),
			cmp.Compare(x.Permission, y.Permission),
		)
	})
	return recs
}

func (b *Broker) handleDescribeAcls(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DescribeACLsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
	f := filterOf(r.ResourceType, r.ResourceName, r.ResourcePatternType, r.Principal, r.Host, r.Operation, r.PermissionType)
	switch {
	case !b.authzOn:
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr(securityDisabledMsg)
		return resp
	case !b.authorizedCluster(req, kmsg.ACLOperationDescribe):
		resp.ErrorCode, resp.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(kerr.ClusterAuthorizationFailed.Description)
		return resp
	}
	if err := f.Validate(); err != nil {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(err.Error())
		return resp
	}
	for _, rec := range sortedBindings(b.meta.Image()) {
		bd := bindingOf(rec)
		if !f.Matches(bd) {
			continue
		}
		n := len(resp.Resources)
		if n == 0 || resp.Resources[n-1].ResourceType != bd.Resource || resp.Resources[n-1].ResourceName != bd.Name ||
			resp.Resources[n-1].ResourcePatternType != bd.Pattern {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = bd.Resource, bd.Name, bd.Pattern
			resp.Resources = append(resp.Resources, res)
			n++
		}
		acl := kmsg.NewDescribeACLsResponseResourceACL()
		acl.Principal, acl.Host, acl.Operation, acl.PermissionType = bd.Principal, bd.Host, bd.Operation, bd.Permission
		resp.Resources[n-1].ACLs = append(resp.Resources[n-1].ACLs, acl)
	}
	return resp
}

func (b *Broker) handleDeleteAcls(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(r.Filters))
	filters := make([]*auth.Filter, len(r.Filters))
	fail := func(i int, code *kerr.Error, msg string) {
		resp.Results[i].ErrorCode = code.Code
		resp.Results[i].ErrorMessage = kmsg.StringPtr(msg)
	}
	allowed := b.authzOn && b.authorizedCluster(req, kmsg.ACLOperationAlter)
	for i, fr := range r.Filters {
		resp.Results[i] = kmsg.NewDeleteACLsResponseResult()
		f := filterOf(fr.ResourceType, fr.ResourceName, fr.ResourcePatternType, fr.Principal, fr.Host, fr.Operation, fr.PermissionType)
		switch {
		case !b.authzOn:
			fail(i, kerr.SecurityDisabled, securityDisabledMsg)
		case !allowed:
			fail(i, kerr.ClusterAuthorizationFailed, kerr.ClusterAuthorizationFailed.Description)
		default:
			if err := f.Validate(); err != nil {
				fail(i, kerr.InvalidRequest, err.Error())
				continue
			}
			filters[i] = &f
		}
	}
	// deleted[i] are the bindings filter i removed; a binding matched
	// by several filters is reported under the first.
	deleted := make([][]auth.Binding, len(filters))
	_, err := b.meta.Update(func(img *metadata.Image) ([]metadata.Record, error) {
		clear(deleted)
		var recs []metadata.Record
		for _, rec := range sortedBindings(img) {
			bd := bindingOf(rec)
			for i, f := range filters {
				if f != nil && f.Matches(bd) {
					deleted[i] = append(deleted[i], bd)
					recs = append(recs, metadata.Record{Acl: &metadata.AclRecord{ID: rec.ID, Remove: true}})
					break
				}
			}
		}
		return recs, nil
	})
	for i, f := range filters {
		if f == nil {
			continue
		}
		if err != nil {
			fail(i, kerr.UnknownServerError, err.Error())
			continue
		}
		for _, bd := range deleted[i] {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType, m.ResourceName, m.ResourcePatternType = bd.Resource, bd.Name, bd.Pattern
			m.Principal, m.Host, m.Operation, m.PermissionType = bd.Principal, bd.Host, bd.Operation, bd.Permission
			resp.Results[i].MatchingACLs = append(resp.Results[i].MatchingACLs, m)
			b.log.Info("ACL deleted", "acl", bd.String(), "by", req.Client.Principal())
		}
	}
	return resp
}
