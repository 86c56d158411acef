package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
)

// itemResults collects what a command did to each item it was named (a
// topic, a group), so that one place decides how per-item results print:
// JSON rows with --json, else a table of the name and its status.
type itemResults struct {
	key   string // the name's JSON key ("topic"); in capitals, its column header
	noun  string // the items in the summary error ("topics")
	items []itemResult
	errs  []error // one per item, nil where it succeeded; for itemFailure
}

func newItemResults(key, noun string) *itemResults {
	return &itemResults{key: key, noun: noun}
}

// add records one item: status when err is nil, else "failed" with the
// error's text (msg is the broker's message, as errorText takes it).
func (rs *itemResults) add(name, status string, err error, msg string) {
	it := itemResult{key: rs.key, name: name, status: status}
	var failed error
	if err != nil {
		it.status, it.err = "failed", errorText(err, msg)
		failed = itemError(name, it.err, err)
	}
	rs.items = append(rs.items, it)
	rs.errs = append(rs.errs, failed)
}

// print writes the results and returns the command's error: nil, or
// itemFailure's summary of the items that failed.
func (rs *itemResults) print(r *runner) error {
	if r.json {
		if err := printJSON(r.env.Stdout, rs.items); err != nil {
			return err
		}
	} else {
		t := newTable(r.env.Stdout, strings.ToUpper(rs.key), "STATUS")
		for _, it := range rs.items {
			s := it.status
			if it.err != "" {
				s += ": " + it.err
			}
			t.row(it.name, s)
		}
		t.flush()
	}
	return itemFailure(rs.errs, rs.noun)
}

// itemResult is one item's outcome.
type itemResult struct {
	key    string // the name's JSON key
	name   string
	status string
	err    string // why it failed; "" when it did not
}

// MarshalJSON writes {"<key>": name, "status": …, "error": …} in that
// order, error only when set: the rows scripts read (jq '.[].topic'). A
// struct cannot choose its key at run time and a map would sort the keys.
func (it itemResult) MarshalJSON() ([]byte, error) {
	fields := [][2]string{{it.key, it.name}, {"status", it.status}}
	if it.err != "" {
		fields = append(fields, [2]string{"error", it.err})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	// printJSON does not escape <, > and &, and encoding/json keeps a
	// Marshaler's escapes as they are: escape here as printJSON would.
	enc.SetEscapeHTML(false)
	str := func(s string) {
		// Encoding a string cannot fail; drop the newline Encode adds.
		enc.Encode(s)
		b.Truncate(b.Len() - 1)
	}
	b.WriteByte('{')
	for i, f := range fields {
		if i > 0 {
			b.WriteByte(',')
		}
		str(f[0])
		b.WriteByte(':')
		str(f[1])
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// errorText renders a per-item Kafka error with the broker's message.
func errorText(err error, msg string) string {
	if err == nil {
		return ""
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		if msg != "" && msg != ke.Description {
			return ke.Message + ": " + msg
		}
		return ke.Message
	}
	return err.Error()
}

// itemError is one item's failure, "name: text", which still carries the
// Kafka error: an item's authorization failure makes the command exit 4,
// as a failure of the whole request does.
func itemError(name, text string, err error) error {
	return &itemErr{msg: name + ": " + text, err: err}
}

type itemErr struct {
	msg string
	err error
}

func (e *itemErr) Error() string { return e.msg }
func (e *itemErr) Unwrap() error { return e.err }

// itemFailure summarises per-item failures into the command's error.
func itemFailure(errs []error, noun string) error {
	var failed []error
	for _, e := range errs {
		if e != nil {
			failed = append(failed, e)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	var ke *kerr.Error
	if errors.As(failed[0], &ke) && isAuthError(ke) {
		return failed[0]
	}
	if len(errs) == 1 {
		return &failedError{msg: failed[0].Error()}
	}
	return &failedError{msg: fmt.Sprintf("%d of %d %s failed", len(failed), len(errs), noun)}
}
