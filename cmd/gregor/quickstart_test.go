package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// quickstartBlocks returns the sh code blocks of README.md's Quickstart
// section, in order.
func quickstartBlocks(t *testing.T) []string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(readme)
	start := strings.Index(s, "## Quickstart")
	end := strings.Index(s, "<!-- quickstart end -->")
	if start < 0 || end < start {
		t.Fatal("README.md has no Quickstart section ending in <!-- quickstart end -->")
	}
	var blocks []string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(s[start:end], -1) {
		blocks = append(blocks, m[1])
	}
	if len(blocks) < 2 {
		t.Fatalf("Quickstart has %d sh blocks, want the start block and at least one more", len(blocks))
	}
	return blocks
}

// TestReadmeQuickstart runs the README's Quickstart as a newcomer would:
// it builds the binary with the README's own command, starts `gregor
// serve` (on free ports instead of 9092/9644, so parallel test runs do
// not collide), and runs the other blocks as one bash script with
// `set -euo pipefail`. The README and this test cannot drift apart.
func TestReadmeQuickstart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs a broker")
	}
	for _, tool := range []string{"bash", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the quickstart needs %s: %v", tool, err)
		}
	}
	blocks := quickstartBlocks(t)
	dir := t.TempDir()

	// Block 1: build and serve.
	var build, serveLine string
	for _, line := range strings.Split(blocks[0], "\n") {
		switch {
		case strings.HasPrefix(line, "go build "):
			build = line
		case strings.HasPrefix(line, "./gregor serve"):
			serveLine = line
		}
	}
	if build != "go build -o gregor ./cmd/gregor" || serveLine == "" {
		t.Fatalf("the first Quickstart block must build with 'go build -o gregor ./cmd/gregor' and run './gregor serve'; it is:\n%s", blocks[0])
	}
	bin := filepath.Join(dir, "gregor")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/gregor")
	cmd.Dir = "../.."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", build, err, out)
	}

	srv := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
		"--data-dir", filepath.Join(dir, "gregor-data"), "--log-format", "json")
	srv.Dir = dir
	logs, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	addrs := make(chan [2]string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		var kafka, admin string
		sc := bufio.NewScanner(io.TeeReader(logs, &logBuf))
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			json.Unmarshal(sc.Bytes(), &line)
			switch line.Msg {
			case "admin listening":
				admin = line.Addr
			case "gregor listening":
				kafka = line.Addr
				addrs <- [2]string{kafka, admin}
			}
		}
	}()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		srv.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { <-logDone; done <- srv.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gregor serve did not stop cleanly: %v\n%s", err, logBuf.String())
			}
		case <-time.After(30 * time.Second):
			srv.Process.Kill()
			t.Errorf("gregor serve did not stop within 30s of SIGTERM")
		}
	}
	t.Cleanup(stop)
	var kafka, admin string
	select {
	case a := <-addrs:
		kafka, admin = a[0], a[1]
	case <-time.After(60 * time.Second):
		t.Fatalf("gregor serve did not start:\n%s", logBuf.String())
	}

	// gregor serve re-executed itself with its timer slack (slack_linux.go)
	// and kept the process ID its starter knows.
	if runtime.GOOS == "linux" {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/timerslack_ns", srv.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(b)); got != "1000000" {
			t.Errorf("gregor serve runs with timer slack %s ns, want the default timer.slack.ns 1000000", got)
		}
	}

	// The other blocks, as one script.
	script := "set -euo pipefail\nset -x\n" + strings.Join(blocks[1:], "\n")
	script = strings.ReplaceAll(script, "127.0.0.1:9644", admin)
	run := exec.Command("bash", "-c", script)
	run.Dir = dir
	run.Env = append(os.Environ(), "GREGOR_BROKERS="+kafka)
	var stdout, stderr bytes.Buffer
	run.Stdout, run.Stderr = &stdout, &stderr
	if err := run.Run(); err != nil {
		t.Fatalf("the Quickstart failed: %v\nstdout:\n%s\nstderr (commands and errors):\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	for _, want := range []string{
		"created",
		"produced 3 records",
		"alice: signed up (partition ",
		"alice: paid (partition ",
		"bob: signed up (partition ",
		"TOTAL-LAG    1",
		"HIGH-WATERMARK",
		"(controller)",
		`gregor_topic_records_in_total{topic="events"} 4`,
		"ok\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the Quickstart's output lacks %q:\n%s", want, out)
		}
	}

	// Records out: the first consume and the group's read the same 3;
	// a long-poll fetch the group consumer left parked may also have
	// caught carol's record.
	if m := regexp.MustCompile(`gregor_topic_records_out_total\{topic="events"\} (\d+)`).FindStringSubmatch(out); m == nil || (m[1] != "6" && m[1] != "7") {
		t.Errorf("records out of events: %v, want 6 or 7", m)
	}

	stop()
	// Logs: one JSON line per notable event, and no per-request lines
	// at info for the dozens of requests above.
	var msgs []string
	for _, line := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
		var l struct {
			Msg   string `json:"msg"`
			Level string `json:"level"`
		}
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Errorf("log line is not JSON: %q", line)
			continue
		}
		msgs = append(msgs, l.Msg)
	}
	for _, want := range []string{"admin listening", "broker recovered", "gregor listening", "topic created", "shutting down", "stopped"} {
		found := false
		for _, m := range msgs {
			found = found || m == want
		}
		if !found {
			t.Errorf("no %q log line; logs:\n%s", want, logBuf.String())
		}
	}
	t.Logf("gregor serve logged:\n%s", logBuf.String())
	if len(msgs) > 25 {
		t.Errorf("%d log lines for a short session: requests should not be logged at info:\n%s", len(msgs), logBuf.String())
	}
}
