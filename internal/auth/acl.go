package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Kafka's ACL vocabulary, numbered as on the wire.
type (
	Resource   = kmsg.ACLResourceType
	Pattern    = kmsg.ACLResourcePatternType
	Operation  = kmsg.ACLOperation
	Permission = kmsg.ACLPermissionType
)

// Wildcards of an ACL binding: any resource name (with a literal
// pattern), any user, any host.
const (
	WildcardResource  = "*"
	WildcardPrincipal = "User:*"
	WildcardHost      = "*"
	// ClusterResource is the one name a CLUSTER resource has.
	ClusterResource = "kafka-cluster"
	// Anonymous is the principal of a connection that did not
	// authenticate.
	Anonymous = "User:ANONYMOUS"
)

// Binding is one ACL: Principal may (Allow) or may not (Deny) perform
// Operation on the resources matching Resource, Name and Pattern, from
// Host. It is Kafka's AclBinding.
type Binding struct {
	Resource   Resource
	Name       string
	Pattern    Pattern
	Principal  string
	Host       string
	Operation  Operation
	Permission Permission
}

// ErrInvalidBinding is returned by Validate.
var ErrInvalidBinding = errors.New("invalid ACL binding")

// Validate checks a binding to be created, as Kafka's controller does:
// concrete types, a resource name, a principal of the form Type:name.
func (b Binding) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidBinding, fmt.Sprintf(format, args...))
	}
	switch b.Resource {
	case kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeGroup, kmsg.ACLResourceTypeCluster,
		kmsg.ACLResourceTypeTransactionalId, kmsg.ACLResourceTypeDelegationToken, kmsg.ACLResourceTypeUser:
	default:
		return bad("resource type %s", b.Resource)
	}
	switch b.Pattern {
	case kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed:
	default:
		return bad("pattern type %s", b.Pattern)
	}
	if b.Operation < kmsg.ACLOperationAll || b.Operation > kmsg.ACLOperationDescribeTokens {
		return bad("operation %s", b.Operation)
	}
	if b.Permission != kmsg.ACLPermissionTypeAllow && b.Permission != kmsg.ACLPermissionTypeDeny {
		return bad("permission type %s", b.Permission)
	}
	if b.Name == "" {
		return bad("empty resource name")
	}
	if typ, name, ok := strings.Cut(b.Principal, ":"); !ok || typ == "" || name == "" {
		return bad("principal %q is not of the form Type:name", b.Principal)
	}
	if b.Host == "" {
		return bad("empty host (use %q for any)", WildcardHost)
	}
	return nil
}

// String formats a binding the way kafka-acls prints one.
func (b Binding) String() string {
	return fmt.Sprintf("(principal=%s, host=%s, operation=%s, permissionType=%s) on %s:%s:%s",
		b.Principal, b.Host, b.Operation, b.Permission, b.Resource, b.Pattern, b.Name)
}

// Filter selects bindings, as Kafka's AclBindingFilter: nil strings and
// the ANY types match everything, and the MATCH pattern type selects the
// bindings that would apply to the named resource (its literal, the
// literal wildcard, and the prefixes of its name).
type Filter struct {
	Resource   Resource
	Name       *string
	Pattern    Pattern
	Principal  *string
	Host       *string
	Operation  Operation
	Permission Permission
}

// Validate checks that a filter has no unknown types, as Kafka's
// DescribeAcls and DeleteAcls require.
func (f Filter) Validate() error {
	if f.Resource < kmsg.ACLResourceTypeAny || f.Resource > kmsg.ACLResourceTypeUser {
		return fmt.Errorf("%w: resource type %s", ErrInvalidBinding, f.Resource)
	}
	if f.Pattern < kmsg.ACLResourcePatternTypeAny || f.Pattern > kmsg.ACLResourcePatternTypePrefixed {
		return fmt.Errorf("%w: pattern type %s", ErrInvalidBinding, f.Pattern)
	}
	if f.Operation < kmsg.ACLOperationAny || f.Operation > kmsg.ACLOperationDescribeTokens {
		return fmt.Errorf("%w: operation %s", ErrInvalidBinding, f.Operation)
	}
	if f.Permission < kmsg.ACLPermissionTypeAny || f.Permission > kmsg.ACLPermissionTypeAllow {
		return fmt.Errorf("%w: permission type %s", ErrInvalidBinding, f.Permission)
	}
	return nil
}

// Matches reports whether the filter selects b.
func (f Filter) Matches(b Binding) bool {
	if f.Resource != kmsg.ACLResourceTypeAny && f.Resource != b.Resource {
		return false
	}
	switch f.Pattern {
	case kmsg.ACLResourcePatternTypeAny:
		if f.Name != nil && *f.Name != b.Name {
			return false
		}
	case kmsg.ACLResourcePatternTypeMatch:
		if f.Name != nil && !patternCovers(b, *f.Name) {
			return false
		}
	default:
		if f.Pattern != b.Pattern || f.Name != nil && *f.Name != b.Name {
			return false
		}
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	if f.Operation != kmsg.ACLOperationAny && f.Operation != b.Operation {
		return false
	}
	return f.Permission == kmsg.ACLPermissionTypeAny || f.Permission == b.Permission
}

// patternCovers reports whether b's resource pattern applies to the
// resource named name.
func patternCovers(b Binding, name string) bool {
	switch b.Pattern {
	case kmsg.ACLResourcePatternTypeLiteral:
		return b.Name == name || b.Name == WildcardResource
	case kmsg.ACLResourcePatternTypePrefixed:
		return strings.HasPrefix(name, b.Name)
	}
	return false
}

// Authorizer decides requests from a set of bindings, as Kafka's
// StandardAuthorizer: super users may do everything; otherwise a
// matching DENY refuses, a matching ALLOW (READ, WRITE, DELETE and
// ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS; ALL
// implies everything) permits, and a resource no binding names at all
// is permitted only with allow.everyone.if.no.acl.found. Immutable; safe
// for concurrent use.
type Authorizer struct {
	super         map[string]bool
	allowIfNoACLs bool
	// literal holds the literal bindings by resource type and name
	// (the wildcard "*" included); prefixed, the prefixed ones by type
	// and prefix, and prefixLens the distinct prefix lengths of each
	// type, ascending: a name is checked against its own prefixes of
	// those lengths, a map lookup each, however many bindings exist.
	literal    map[resourceKey][]Binding
	prefixed   map[resourceKey][]Binding
	prefixLens map[Resource][]int
}

type resourceKey struct {
	typ  Resource
	name string
}

// NewAuthorizer indexes bindings. superUsers are principals
// ("User:alice") that bypass the bindings.
func NewAuthorizer(bindings []Binding, superUsers []string, allowIfNoACLs bool) *Authorizer {
	a := &Authorizer{
		super:         map[string]bool{},
		allowIfNoACLs: allowIfNoACLs,
		literal:       map[resourceKey][]Binding{},
		prefixed:      map[resourceKey][]Binding{},
		prefixLens:    map[Resource][]int{},
	}
	for _, u := range superUsers {
		a.super[u] = true
	}
	for _, b := range bindings {
		switch b.Pattern {
		case kmsg.ACLResourcePatternTypeLiteral:
			k := resourceKey{b.Resource, b.Name}
			a.literal[k] = append(a.literal[k], b)
		case kmsg.ACLResourcePatternTypePrefixed:
			k := resourceKey{b.Resource, b.Name}
			a.prefixed[k] = append(a.prefixed[k], b)
			if lens := a.prefixLens[b.Resource]; !slices.Contains(lens, len(b.Name)) {
				a.prefixLens[b.Resource] = append(lens, len(b.Name))
			}
		}
	}
	for _, lens := range a.prefixLens {
		slices.Sort(lens)
	}
	return a
}

// SuperUser reports whether principal bypasses the bindings.
func (a *Authorizer) SuperUser(principal string) bool { return a.super[principal] }

// Authorize reports whether principal, connected from host, may perform
// op on the resource of type typ named name.
func (a *Authorizer) Authorize(principal, host string, op Operation, typ Resource, name string) bool {
	if a.super[principal] {
		return true
	}
	found, allowed := false, false
	check := func(b Binding) bool { // reports a deny
		found = true
		if !appliesTo(b, principal, host) {
			return false
		}
		if b.Permission == kmsg.ACLPermissionTypeDeny {
			return b.Operation == op || b.Operation == kmsg.ACLOperationAll
		}
		if implies(b.Operation, op) {
			allowed = true
		}
		return false
	}
	for _, b := range a.literal[resourceKey{typ, name}] {
		if check(b) {
			return false
		}
	}
	if name != WildcardResource {
		for _, b := range a.literal[resourceKey{typ, WildcardResource}] {
			if check(b) {
				return false
			}
		}
	}
	for _, n := range a.prefixLens[typ] {
		if n > len(name) {
			break
		}
		for _, b := range a.prefixed[resourceKey{typ, name[:n]}] {
			if check(b) {
				return false
			}
		}
	}
	if !found {
		return a.allowIfNoACLs
	}
	return allowed
}

// AuthorizeAny reports whether principal may perform op on some
// resource of type typ: an ALLOW binding for it exists that no DENY
// binding covers (Kafka's authorizeByResourceType, which lets a producer
// with WRITE on any topic be idempotent, KIP-679).
func (a *Authorizer) AuthorizeAny(principal, host string, op Operation, typ Resource) bool {
	if a.super[principal] {
		return true
	}
	var denyLiteral, denyPrefix []string
	var allows []Binding
	visit := func(b Binding) {
		if !appliesTo(b, principal, host) || (b.Operation != op && b.Operation != kmsg.ACLOperationAll) {
			return
		}
		if b.Permission == kmsg.ACLPermissionTypeAllow {
			allows = append(allows, b)
		} else if b.Pattern == kmsg.ACLResourcePatternTypeLiteral {
			denyLiteral = append(denyLiteral, b.Name)
		} else {
			denyPrefix = append(denyPrefix, b.Name)
		}
	}
	for _, m := range []map[resourceKey][]Binding{a.literal, a.prefixed} {
		for k, bs := range m {
			if k.typ == typ {
				for _, b := range bs {
					visit(b)
				}
			}
		}
	}
	for _, d := range denyLiteral {
		if d == WildcardResource {
			return false
		}
	}
	if a.allowIfNoACLs {
		return true
	}
	dominated := func(name string) bool {
		for _, p := range denyPrefix {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
		return false
	}
	for _, b := range allows {
		if dominated(b.Name) {
			continue
		}
		if b.Pattern == kmsg.ACLResourcePatternTypeLiteral && b.Name != WildcardResource {
			denied := false
			for _, d := range denyLiteral {
				denied = denied || d == b.Name
			}
			if denied {
				continue
			}
		}
		return true
	}
	return false
}

// appliesTo reports whether b's principal and host cover the request's.
func appliesTo(b Binding, principal, host string) bool {
	return (b.Principal == principal || b.Principal == WildcardPrincipal) &&
		(b.Host == host || b.Host == WildcardHost)
}

// implies reports whether an ALLOW of granted permits op.
func implies(granted, op Operation) bool {
	if granted == op || granted == kmsg.ACLOperationAll {
		return true
	}
	switch op {
	case kmsg.ACLOperationDescribe:
		switch granted {
		case kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter:
			return true
		}
	case kmsg.ACLOperationDescribeConfigs:
		return granted == kmsg.ACLOperationAlterConfigs
	}
	return false
}
