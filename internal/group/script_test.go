package group

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rewrite regenerates the expected output of the testdata scripts:
//
//	go test ./internal/group -run TestScripts -rewrite
//
// Review the diff before committing it.
var rewrite = flag.Bool("rewrite", false, "rewrite testdata scripts with actual output")

// scriptCmd is one command of a data-driven script:
//
//	command arg key=value key=value
//	----
//	expected output
//
// Blocks are separated by blank lines; lines starting with # outside a
// block are comments.
type scriptCmd struct {
	line     int
	text     string
	name     string
	args     []scriptArg
	expected string
	// pre is the comment and blank lines before the command, kept on
	// rewrite.
	pre []string
}

type scriptArg struct{ key, val string }

func (c *scriptCmd) get(key string) (string, bool) {
	for _, a := range c.args {
		if a.key == key {
			return a.val, true
		}
	}
	return "", false
}

func (c *scriptCmd) all(key string) []string {
	var out []string
	for _, a := range c.args {
		if a.key == key {
			out = append(out, a.val)
		}
	}
	return out
}

func parseScript(t *testing.T, path string) []*scriptCmd {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cmds []*scriptCmd
	var pre []string
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			pre = append(pre, line)
			continue
		}
		c := &scriptCmd{line: n, text: line, pre: pre}
		pre = nil
		fields := strings.Fields(line)
		c.name = fields[0]
		for _, f := range fields[1:] {
			k, v, _ := strings.Cut(f, "=")
			c.args = append(c.args, scriptArg{k, v})
		}
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: command without ---- line", path, n)
		}
		n++
		var out []string
		for sc.Scan() {
			n++
			if sc.Text() == "" {
				break
			}
			out = append(out, sc.Text())
		}
		c.expected = strings.Join(out, "\n")
		cmds = append(cmds, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cmds
}

// runScripts runs every script in testdata/<dir> with a fresh run
// function per file.
func runScripts(t *testing.T, dir string, newRunner func(t *testing.T) func(c *scriptCmd) string) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scripts in testdata/%s", dir)
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			cmds := parseScript(t, path)
			run := newRunner(t)
			var b strings.Builder
			for _, c := range cmds {
				got := strings.TrimRight(run(c), "\n")
				if *rewrite {
					for _, p := range c.pre {
						b.WriteString(p + "\n")
					}
					fmt.Fprintf(&b, "%s\n----\n", c.text)
					if got != "" {
						b.WriteString(got + "\n")
					}
					b.WriteString("\n")
					continue
				}
				if got != c.expected {
					t.Errorf("%s:%d: %s\n got:\n%s\nwant:\n%s", path, c.line, c.text, indent(got), indent(c.expected))
				}
			}
			if *rewrite {
				if err := os.WriteFile(path, []byte(strings.TrimRight(b.String(), "\n")+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func indent(s string) string {
	if s == "" {
		return "  (empty)"
	}
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
