package crashtest

import (
	"testing"

	"go.uber.org/goleak"
)

// Abandoned brokers (Kill, Crash) must still let every goroutine finish.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
