package relay

import (
	"testing"
	"time"
)

// Turns returns how many times the loop has turned, for tests that check
// that an idle server sleeps.
func (s *Server) Turns() uint64 { return s.turns.Load() }

// SetDeafTime sets how long a deaf client may go on sending, for servers
// started after it, until the test ends.
func SetDeafTime(t testing.TB, d time.Duration) {
	old := deafTime
	deafTime = d
	t.Cleanup(func() { deafTime = old })
}
