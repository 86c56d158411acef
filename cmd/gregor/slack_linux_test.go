package main

import (
	"fmt"
	"os"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTimerSlackReexec runs this test binary as a child that calls
// setTimerSlack: the child must come back from the exec with the slack,
// the same process ID and its arguments intact (it runs this test
// again) and its name, and execute itself only once (the marker).
func TestTimerSlackReexec(t *testing.T) {
	if os.Getenv("GREGOR_SLACK_HELPER") != "" {
		if err := setTimerSlack(2_000_000); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		// Past the exec: report what the re-executed process has.
		slack, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		comm, _ := os.ReadFile("/proc/self/comm")
		fmt.Printf("pid %d slack %d marker %s comm %s", os.Getpid(), slack, os.Getenv(slackReexecEnv), comm)
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestTimerSlackReexec$")
	cmd.Env = append(os.Environ(), "GREGOR_SLACK_HELPER=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	// The process keeps its name: ps and pgrep show the exec'd file's.
	comm, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("pid %d slack 2000000 marker 1 comm %s", cmd.Process.Pid, comm)
	if string(out) != want {
		t.Fatalf("helper printed %q, want %q", out, want)
	}
}
