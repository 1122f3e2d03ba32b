package relay

// Turns returns how many times the loop has turned, for tests that check
// that an idle server sleeps.
func (s *Server) Turns() uint64 { return s.turns.Load() }
