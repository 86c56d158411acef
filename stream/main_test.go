package stream_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind: every App's
// Close (or the end of its Run) must stop everything it started. With
// crashWorkerEnv set, the binary is instead a worker for
// TestExactlyOnceCrash, killed by the test.
func TestMain(m *testing.M) {
	if addr := os.Getenv(crashWorkerEnv); addr != "" {
		os.Exit(crashWorker(addr))
	}
	goleak.VerifyTestMain(m)
}
