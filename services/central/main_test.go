package central_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test leaves no goroutine behind: connection readers, ack writers,
// the store's writer and the draw all end with the server.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
