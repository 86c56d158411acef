package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runServe starts the built gregor with serve args (JSON logs; data in a
// temporary directory) and returns its admin address once /readyz
// answers 200 (after the console is mounted); the test's end stops it
// with SIGTERM and checks that it stopped cleanly.
func runServe(t *testing.T, bin string, args ...string) string {
	t.Helper()
	admin, _ := startServe(t, bin, args...)()
	return admin
}

// startServe starts gregor serve as runServe does and returns at once;
// the function it returns waits until the broker is ready and returns
// its admin and Kafka addresses. Brokers of one cluster are started
// together, then waited for: each opens once a quorum is up.
func startServe(t *testing.T, bin string, args ...string) func() (admin, kafka string) {
	t.Helper()
	args = append([]string{"serve", "--admin-listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data"), "--log-format", "json"}, args...)
	cmd := exec.Command(bin, args...)
	logs, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logBuf bytes.Buffer
	logText := func() string { mu.Lock(); defer mu.Unlock(); return logBuf.String() }
	ready := make(chan [2]string, 1)
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		var admin string
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			mu.Lock()
			logBuf.Write(sc.Bytes())
			logBuf.WriteByte('\n')
			mu.Unlock()
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			json.Unmarshal(sc.Bytes(), &line)
			switch line.Msg {
			case "admin listening":
				admin = line.Addr
			case "gregor listening":
				select {
				case ready <- [2]string{admin, line.Addr}:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { <-logDone; done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("gregor serve did not stop cleanly: %v\n%s", err, logText())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("gregor serve did not stop within 30s of SIGTERM")
		}
	})
	return func() (string, string) {
		t.Helper()
		var addrs [2]string
		select {
		case addrs = <-ready:
		case <-time.After(30 * time.Second):
			t.Fatalf("gregor serve did not start:\n%s", logText())
		}
		// The Kafka listener is up; the console is mounted just after,
		// and /readyz answers 200 once it is.
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get("http://" + addrs[0] + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return addrs[0], addrs[1]
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("gregor serve never ready (%v):\n%s", err, logText())
			}
		}
	}
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestServeConsole: gregor serve wires the web console on the admin
// address. It reads a broker whose only listener wants SASL and whose
// authorizer has no ACLs, without credentials; admin.console.enable=false
// turns it off.
func TestServeConsole(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs brokers")
	}
	bin := buildGregor(t)

	t.Run("SASLOnly", func(t *testing.T) {
		admin := runServe(t, bin,
			"--set", "listeners=SASL_PLAINTEXT://127.0.0.1:0",
			"--set", "sasl.enabled.mechanisms=SCRAM-SHA-256",
			"--set", "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"--add-scram", "SCRAM-SHA-256=[name=alice,password=alice-secret]")
		if code, body := httpGet(t, "http://"+admin+"/"); code != 200 || !strings.Contains(body, "/console/") {
			t.Errorf("admin index: %d\n%s", code, body)
		}
		var o struct {
			ClusterID string `json:"cluster_id"`
			Version   string `json:"version"`
			Brokers   []struct {
				NodeID int32 `json:"node_id"`
			} `json:"brokers"`
			Listeners []struct {
				Name, Protocol, Address string
			} `json:"listeners"`
		}
		code, body := httpGet(t, "http://"+admin+"/console/?format=json")
		if err := json.Unmarshal([]byte(body), &o); code != 200 || err != nil {
			t.Fatalf("/console/: %d %v\n%s", code, err, body)
		}
		if o.ClusterID == "" || o.Version == "" || len(o.Brokers) != 1 || len(o.Listeners) != 1 || o.Listeners[0].Protocol != "SASL_PLAINTEXT" {
			t.Errorf("overview: %s", body)
		}
		var s struct {
			AuthorizerEnabled bool                    `json:"authorizer_enabled"`
			ACLsError         string                  `json:"acls_error"`
			ScramUsers        []struct{ User string } `json:"scram_users"`
		}
		code, body = httpGet(t, "http://"+admin+"/console/security?format=json")
		if err := json.Unmarshal([]byte(body), &s); code != 200 || err != nil || !s.AuthorizerEnabled || s.ACLsError != "" ||
			len(s.ScramUsers) != 1 || s.ScramUsers[0].User != "alice" {
			t.Errorf("/console/security: %d %v\n%s", code, err, body)
		}
		if code, body := httpGet(t, "http://"+admin+"/console/topics"); code != 200 || !strings.Contains(body, "<h1>Topics</h1>") {
			t.Errorf("/console/topics: %d\n%s", code, body)
		}
	})

	t.Run("Disabled", func(t *testing.T) {
		admin := runServe(t, bin, "--listen", "127.0.0.1:0", "--set", "admin.console.enable=false")
		if code, _ := httpGet(t, "http://"+admin+"/console/"); code != http.StatusNotFound {
			t.Errorf("/console/ with admin.console.enable=false: %d, want 404", code)
		}
		if _, body := httpGet(t, "http://"+admin+"/"); strings.Contains(body, "/console/") {
			t.Errorf("the index lists the disabled console:\n%s", body)
		}
	})
}

// buildGregor builds the gregor binary into the test's directory.
func buildGregor(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "gregor")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}
