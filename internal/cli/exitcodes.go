package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Exit statuses, documented in the top-level help. Scripts rely on them.
const (
	ExitOK          = 0 // success
	ExitFailed      = 1 // the cluster refused or the operation failed (unknown topic, topic exists, …)
	ExitUsage       = 2 // bad flags or arguments
	ExitUnreachable = 3 // no broker could be reached
	ExitAuth        = 4 // authentication or authorization failed
)

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// unreachableError says no broker answered.
type unreachableError struct {
	brokers string
	err     error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the cluster at %s: %s", e.brokers, rootCause(e.err))
}

func (e *unreachableError) Unwrap() error { return e.err }

// failedError is an operation that failed for some items (a topic of
// several could not be created): the table already told which, so the
// message is a summary.
type failedError struct{ msg string }

func (e *failedError) Error() string { return e.msg }

// unsupportedError says the cluster lacks an API a command needs.
type unsupportedError struct{ api string }

func (e *unsupportedError) Error() string {
	return fmt.Sprintf("the cluster does not support %s, which this command needs", e.api)
}

// exitCode maps an error to the process exit status.
func exitCode(err error) int {
	var ue *usageError
	var ke *kerr.Error
	var unr *unreachableError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, &unr):
		return ExitUnreachable
	case errors.As(err, &ke) && isAuthError(ke):
		return ExitAuth
	}
	return ExitFailed
}

func isAuthError(ke *kerr.Error) bool {
	switch ke {
	case kerr.SaslAuthenticationFailed, kerr.IllegalSaslState, kerr.UnsupportedSaslMechanism,
		kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed,
		kerr.TransactionalIDAuthorizationFailed, kerr.DelegationTokenAuthorizationFailed:
		return true
	}
	return false
}

// isConnError reports whether err means the brokers could not be
// reached (refused, unresolvable, timed out dialing).
func isConnError(err error) bool {
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case errors.As(err, &op) && op.Op == "dial",
		errors.As(err, &dns),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EHOSTUNREACH),
		errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, kgo.ErrClientClosed):
		return true
	}
	return false
}

// isUnsupported reports whether err means the broker does not serve the
// request's API or version.
func isUnsupported(err error) bool {
	if errors.Is(err, kerr.UnsupportedVersion) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "broker is too old") || strings.Contains(s, "request key is unknown")
}

// message renders err as the one line printed after "gregor CMD: ".
func message(err error) string {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		// kerr's text is "NAME: description"; keep the command's
		// context (what it was doing) in front when it wrapped the
		// error.
		return err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out waiting for the cluster (raise --timeout?)"
	}
	return err.Error()
}

// rootCause strips Go's wrapping down to the part a person reads:
// "dial tcp 127.0.0.1:9092: connect: connection refused" → "connection
// refused (127.0.0.1:9092)".
func rootCause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		inner := op.Err.Error()
		if i := strings.LastIndex(inner, ": "); i >= 0 {
			inner = inner[i+2:]
		}
		if op.Addr != nil {
			return fmt.Sprintf("%s (%s)", inner, op.Addr)
		}
		return inner
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return fmt.Sprintf("cannot resolve %s", dns.Name)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "no broker answered in time"
	}
	return err.Error()
}
