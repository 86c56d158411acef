package broker

import (
	"fmt"
	"slices"
	"strings"
)

// TrustInternalPrincipal makes principal one of the authorizer's super
// users, as if super.users named it, without it showing in the broker's
// configs. It is for the in-process connections the server serves as
// their own principal (server.InternalPrincipal, the web console's), so
// that they can describe the cluster whatever the ACLs. A principal of
// type User is refused: network clients authenticate as User:<name>,
// and one of them must never become a super user this way.
//
// Call it after Open and before the broker serves requests: super.users
// is read without a lock.
func (b *Broker) TrustInternalPrincipal(principal string) error {
	typ, name, ok := strings.Cut(principal, ":")
	switch {
	case !ok || typ == "" || name == "":
		return fmt.Errorf("broker: internal principal %q is not of the form Type:name", principal)
	case strings.EqualFold(typ, "User"):
		return fmt.Errorf("broker: internal principal %q: network clients authenticate as type User; an internal principal needs a type of its own", principal)
	}
	if !slices.Contains(b.superUsers, principal) {
		b.superUsers = append(slices.Clip(b.superUsers), principal)
	}
	// The authorizer built from the old list, if any, is rebuilt.
	b.authz.Store(nil)
	return nil
}
