package socketio_test

import (
	"testing"

	"github.com/operate/realtime/internal/testutil/leakcheck"
)

// TestMain fails the package when its tests leave goroutines behind.
func TestMain(m *testing.M) { leakcheck.Main(m) }
