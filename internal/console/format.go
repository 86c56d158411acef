package console

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"
)

// pageNames are the templates/<name>.html files, each defining
// "content" for templates/layout.html.
var pageNames = []string{"overview", "topics", "topic", "groups", "group", "security", "error"}

// parsePages parses each page with the layout. html/template escapes
// every value by its context: topic names, group IDs, member IDs and
// principals are user input.
func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

var funcs = template.FuncMap{
	"bytes":    humanBytes,
	"rate":     humanRate,
	"num":      number,
	"offset":   offset,
	"ints":     ints,
	"duration": duration,
	"state":    stateClass,
	"deref":    deref,
}

// toInt64 takes the numbers the templates pass: int, int32, int64,
// float64.
func toInt64(v any) int64 {
	switch n := v.(type) {
	case int:
		return int64(n)
	case int32:
		return int64(n)
	case int64:
		return n
	case float64:
		return int64(n)
	}
	return 0
}

// humanBytes renders a size as people read it (512 B, 1.5 KiB); "–"
// when unknown (negative).
func humanBytes(v any) string {
	n := toInt64(v)
	if n < 0 {
		return "–"
	}
	if n < 1024 {
		return strconv.FormatInt(n, 10) + " B"
	}
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	f := float64(n) / 1024
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + units[i]
}

// humanRate renders bytes per second; "–" when there is no rate yet.
func humanRate(v *float64) string {
	if v == nil {
		return "–"
	}
	return humanBytes(*v) + "/s"
}

// number renders a count with thousands separators: 1 234 567 (thin
// spaces, unambiguous in any locale).
func number(v any) string {
	n := toInt64(v)
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteString("\u2009")
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// offset renders an offset or a lag; "–" for -1 (none, unknown).
func offset(v any) string {
	if toInt64(v) < 0 {
		return "–"
	}
	return number(v)
}

func ints(xs []int32) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.Itoa(int(x))
	}
	return strings.Join(parts, ", ")
}

// duration renders seconds as 3d 4h, 5h 6m, 7m 8s or 9s.
func duration(seconds float64) string {
	d := time.Duration(seconds * float64(time.Second))
	days, d := d/(24*time.Hour), d%(24*time.Hour)
	hours, d := d/time.Hour, d%time.Hour
	mins, d := d/time.Minute, d%time.Minute
	secs := d / time.Second
	switch {
	case days > 0:
		return fmt.Sprintf("%dd %dh", days, hours)
	case hours > 0:
		return fmt.Sprintf("%dh %dm", hours, mins)
	case mins > 0:
		return fmt.Sprintf("%dm %ds", mins, secs)
	}
	return fmt.Sprintf("%ds", secs)
}

// stateClass is the CSS class of a group state's badge.
func stateClass(state string) string {
	switch state {
	case "Stable":
		return "ok"
	case "PreparingRebalance", "CompletingRebalance", "Assigning", "Reconciling":
		return "busy"
	case "Dead":
		return "bad"
	}
	return "idle"
}
