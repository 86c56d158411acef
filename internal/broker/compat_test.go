package broker

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

var updateCompat = flag.Bool("update-compat", false, "rewrite docs/COMPAT.md's API table from the handler registrations")

const (
	compatDoc   = "../../docs/COMPAT.md"
	compatBegin = "<!-- BEGIN API TABLE"
	compatEnd   = "<!-- END API TABLE -->"
)

type compatRow struct {
	key      int16
	name     string
	min, max int16
	notes    string
}

func (r compatRow) String() string {
	s := fmt.Sprintf("| %d | %s | %d | %d |", r.key, r.name, r.min, r.max)
	if r.notes != "" {
		s += " " + r.notes
	}
	return s + " |"
}

// TestCompatTable keeps docs/COMPAT.md's "API × version" table equal to
// what ApiVersions advertises: the handlers' registrations. Registering,
// removing or re-ranging an API fails it until the table follows:
//
//	go test ./internal/broker -run TestCompatTable -update-compat
//
// rewrites the table (keeping each row's notes) for review in the diff.
func TestCompatTable(t *testing.T) {
	doc, err := os.ReadFile(compatDoc)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	begin := strings.Index(text, compatBegin)
	end := strings.Index(text, compatEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s: no %q … %q block", compatDoc, compatBegin, compatEnd)
	}
	// The block: the BEGIN comment line, the header, the separator, rows.
	block := text[begin:end]
	lines := strings.Split(strings.TrimRight(block, "\n"), "\n")
	if len(lines) < 3 {
		t.Fatalf("%s: the API table has no header", compatDoc)
	}
	documented := map[int16]compatRow{}
	var problems []string
	for i, line := range lines[3:] {
		row, err := parseCompatRow(line)
		if err != nil {
			problems = append(problems, fmt.Sprintf("row %d %q: %v", i+1, line, err))
			continue
		}
		if _, dup := documented[row.key]; dup {
			problems = append(problems, fmt.Sprintf("key %d is documented twice", row.key))
		}
		documented[row.key] = row
	}

	keys := make([]int16, 0, len(apis))
	for k := range apis {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var want []compatRow
	for _, k := range keys {
		a := apis[k]
		row := compatRow{key: k, name: kmsg.NameForKey(k), min: a.min, max: a.max}
		d, ok := documented[k]
		row.notes = d.notes
		want = append(want, row)
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s (key %d) is registered v%d-%d but not documented", row.name, k, a.min, a.max))
		case d.name != row.name || d.min != a.min || d.max != a.max:
			problems = append(problems, fmt.Sprintf("key %d is documented as %s v%d-%d, registered as %s v%d-%d", k, d.name, d.min, d.max, row.name, a.min, a.max))
		}
	}
	for k, d := range documented {
		if _, ok := apis[k]; !ok {
			problems = append(problems, fmt.Sprintf("%s (key %d) is documented but not registered", d.name, k))
		}
	}
	if len(problems) == 0 {
		return
	}
	if *updateCompat {
		out := append([]string(nil), lines[:3]...)
		for _, r := range want {
			out = append(out, r.String())
		}
		text = text[:begin] + strings.Join(out, "\n") + "\n" + text[end:]
		if err := os.WriteFile(compatDoc, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s's API table; fill in the notes of new rows", compatDoc)
		return
	}
	slices.Sort(problems)
	t.Fatalf("docs/COMPAT.md's API table disagrees with the handler registrations:\n  %s\nrun: go test ./internal/broker -run TestCompatTable -update-compat",
		strings.Join(problems, "\n  "))
}

// parseCompatRow parses "| key | name | min | max | notes |".
func parseCompatRow(line string) (compatRow, error) {
	line = strings.TrimSpace(line)
	if !strings.HasPrefix(line, "|") || !strings.HasSuffix(line, "|") {
		return compatRow{}, fmt.Errorf("not a table row")
	}
	cells := strings.Split(line[1:len(line)-1], "|")
	if len(cells) < 4 {
		return compatRow{}, fmt.Errorf("want key | name | min | max | notes")
	}
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	var nums [3]int16
	for i, c := range []string{cells[0], cells[2], cells[3]} {
		n, err := strconv.ParseInt(c, 10, 16)
		if err != nil {
			return compatRow{}, err
		}
		nums[i] = int16(n)
	}
	row := compatRow{key: nums[0], name: cells[1], min: nums[1], max: nums[2]}
	if len(cells) > 4 {
		row.notes = strings.Join(cells[4:], "|")
	}
	return row, nil
}
