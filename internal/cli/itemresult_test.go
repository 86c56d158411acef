package cli

import (
	"bytes"
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// TestItemResultsJSON: the rows print byte for byte as the per-command
// structs they replaced did, through printJSON (indented, <>& unescaped).
func TestItemResultsJSON(t *testing.T) {
	type topicRow struct {
		Topic  string `json:"topic"`
		Status string `json:"status"`
		Error  string `json:"error,omitempty"`
	}
	odd := `a<b>&"c"\ é` + "\t\u2028"
	rs := newItemResults("topic", "topics")
	rs.add("events", "deleted", nil, "")
	rs.add(odd, "deleted", errors.New(odd), "")
	want := []topicRow{{"events", "deleted", ""}, {odd, "failed", odd}}

	var got, exp bytes.Buffer
	if err := printJSON(&got, rs.items); err != nil {
		t.Fatal(err)
	}
	if err := printJSON(&exp, want); err != nil {
		t.Fatal(err)
	}
	if got.String() != exp.String() {
		t.Errorf("got:\n%s\nwant:\n%s", got.String(), exp.String())
	}
}

// TestItemResultsTable: the table and the summary error.
func TestItemResultsTable(t *testing.T) {
	var out bytes.Buffer
	r := &runner{env: Env{Stdout: &out}}
	rs := newItemResults("group", "groups")
	rs.add("billing", "deleted", nil, "")
	rs.add("old", "deleted", errors.New("boom"), "")
	err := rs.print(r)
	if want := "GROUP    STATUS\nbilling  deleted\nold      failed: boom\n"; out.String() != want {
		t.Errorf("table:\n%q\nwant:\n%q", out.String(), want)
	}
	if err == nil || err.Error() != "1 of 2 groups failed" || exitCode(err) != ExitFailed {
		t.Errorf("error %v, exit %d", err, exitCode(err))
	}
}

// TestItemAuthFailureExitCode: an item refused for authorization makes
// the command exit 4 (ExitAuth), whether it is the only item or one of
// several, as a refused request does.
func TestItemAuthFailureExitCode(t *testing.T) {
	for _, n := range []int{1, 2} {
		var out bytes.Buffer
		r := &runner{env: Env{Stdout: &out}}
		rs := newItemResults("topic", "topics")
		rs.add("secret", "deleted", kerr.TopicAuthorizationFailed, "")
		if n == 2 {
			rs.add("events", "deleted", nil, "")
		}
		err := rs.print(r)
		if exitCode(err) != ExitAuth {
			t.Errorf("%d items: error %v, exit %d, want %d", n, err, exitCode(err), ExitAuth)
		}
	}
}
