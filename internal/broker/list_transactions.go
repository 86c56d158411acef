package broker

import (
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/gregor-streaming/gregor/internal/txn"
	"github.com/gregor-streaming/gregor/internal/wire"
)

// ListTransactions: v0-2
//
// Version notes:
//   - v1: DurationFilterMillis: open transactions running at least that
//     long (KIP-994)
//   - v2: TransactionalIDPattern, a regular expression (KIP-1152)
//
// Unknown state names in the filter are returned in
// UnknownStateFilters, as Kafka does.
func init() { registerSync(66, 0, 2, (*Broker).handleListTransactions) }

func (b *Broker) handleListTransactions(req *wire.Request) kmsg.Response {
	r := req.Body.(*kmsg.ListTransactionsRequest)
	resp := r.ResponseKind().(*kmsg.ListTransactionsResponse)
	f := txn.ListFilter{ProducerIDs: r.ProducerIDFilters, MinDuration: -1}
	for _, name := range r.StateFilters {
		if s, ok := txn.ParseState(name); ok {
			f.States = append(f.States, s)
		} else {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, name)
		}
	}
	if len(r.StateFilters) > 0 && len(f.States) == 0 {
		return resp // only unknown states: nothing matches
	}
	if r.Version >= 1 && r.DurationFilterMillis >= 0 {
		f.MinDuration = time.Duration(r.DurationFilterMillis) * time.Millisecond
	}
	if r.Version >= 2 && r.TransactionalIDPattern != nil && *r.TransactionalIDPattern != "" {
		re, err := regexp.Compile(*r.TransactionalIDPattern)
		if err != nil {
			resp.ErrorCode = kerr.InvalidRegularExpression.Code
			return resp
		}
		f.Pattern = re
	}
	c := b.txns.coord
	if !c.Started() {
		return resp
	}
	ls, err := c.List(f)
	if err != nil {
		resp.ErrorCode = err.Code
	}
	for _, l := range ls {
		// Those the client may describe (Kafka's
		// handleListTransactionsRequest).
		if !b.authorizedTxnID(req, kmsg.ACLOperationDescribe, l.TransactionalID) {
			continue
		}
		ts := kmsg.NewListTransactionsResponseTransactionState()
		ts.TransactionalID, ts.ProducerID, ts.TransactionState = l.TransactionalID, l.ProducerID, l.State.String()
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return resp
}
