package loadtest

import (
	"testing"

	"go.uber.org/goleak"
)

// A load run, its in-process central and every simulated agency leave no
// goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
