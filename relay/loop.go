package relay

import (
	"fmt"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Serve runs the room on the listening stream sockets fds until Shutdown is
// called. It takes the fds over and closes them, with every client, before
// it returns. It returns nil after a shutdown and an error if the loop
// cannot go on (poll itself failing). The fds must be non-blocking.
func (s *Server) Serve(fds []int) error {
	s.listeners = fds
	defer s.closeAll()

	wake, err := newWake()
	if err != nil {
		return fmt.Errorf("relay: %w", err)
	}

	s.mu.Lock()
	s.wake = wake
	s.mu.Unlock()

	s.log.Info("serving", "listeners", len(fds))
	if s.cfg.Ready != nil {
		s.cfg.Ready()
	}

	s.status.changed = true
	for {
		now := time.Now()

		// Begin a shutdown that was asked for, and end one that is done.
		if s.stopAt.IsZero() && s.stopping() {
			s.beginShutdown(now)
		}

		if !s.stopAt.IsZero() && (len(s.clients) == 0 || !now.Before(s.stopAt)) {
			s.log.Info("stopped", "still_open", len(s.clients), "relayed", s.relayed)
			return nil
		}

		// Report to the caller, and announce paced notices, when due.
		s.tick(now)

		// Wait for events or the next timer. pollSet lays out s.pfds anew,
		// so a poll that ends without events (a timer, EINTR) leaves every
		// Revents zero and the steps below find nothing to do.
		if _, err := poll(s.pfds, s.pollSet(now)); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		s.turns.Add(1)
		now = time.Now()

		// Clear a wake-up: Shutdown's flag is read at the top.
		if s.pfds[0].Revents != 0 {
			drainWake(s.wake)
		}

		// Accept new connections.
		s.acceptAll(now)

		// Read from ready clients, split lines and act on them.
		s.readAll(now)

		// Go on with clients held back by their line rate.
		s.resume(now)

		// Take the clients that left out of the room, and tell the others.
		s.departures(now)

		// Give every client with new output one write.
		s.flush()

		// Close the connections that have nothing more to do.
		if s.gone > 0 {
			s.closeDone(now)
		}
	}
}

// pollSet fills s.pfds for the next poll and returns its timeout in
// milliseconds: 0 if work is pending, -1 if nothing but I/O can end the
// wait, else the time to the nearest timer. The wake-up fd comes first, then
// the listeners, then the clients in the order of s.clients. One pass over
// the clients does both jobs.
func (s *Server) pollSet(now time.Time) int {
	s.pfds = s.pfds[:0]
	s.pfds = append(s.pfds, unix.PollFd{Fd: int32(s.wake), Events: unix.POLLIN})

	var next time.Time
	soonest := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}

	accepting := now.After(s.acceptAt)
	if !accepting {
		soonest(s.acceptAt)
	}

	for _, fd := range s.listeners {
		pfd := unix.PollFd{Fd: int32(fd)}
		if accepting {
			pfd.Events = unix.POLLIN
		}
		s.pfds = append(s.pfds, pfd)
	}

	s.held = false
	for _, c := range s.clients {
		pfd := unix.PollFd{Fd: int32(c.fd)}
		switch {
		case c.readable(now):
			pfd.Events |= unix.POLLIN
		case c.leave == "" && (len(c.in) > 0 || now.Before(c.hold)):
			// Held back by its line rate: wake for it when the budget
			// refills, or at once if it just has. A deaf client's fd
			// would report its error on every poll, so poll skips it.
			soonest(c.hold)
			s.held = true
			if c.deaf {
				pfd.Fd = -1
			}
		}

		if c.blocked {
			pfd.Events |= unix.POLLOUT
		}

		if !c.inRoom {
			soonest(c.closeBy)
		} else if c.deaf {
			soonest(c.deafBy)
			s.held = true
		}
		s.pfds = append(s.pfds, pfd)
	}

	if s.status.changed && s.cfg.Status != nil {
		soonest(s.status.last.Add(statusEvery))
	}

	if s.cfg.Heartbeat != nil && s.cfg.HeartbeatEvery > 0 {
		soonest(s.heartbeat)
	}

	if s.unshown > 0 {
		soonest(now.Add(s.notices.wait(now, noticeRate, noticeBurst)))
	}
	soonest(s.stopAt)

	switch {
	case len(s.dirty) > 0 || s.reap:
		return 0
	case next.IsZero():
		return -1
	}

	// Round up, so that the timer has passed when poll returns.
	return int(max(0, (next.Sub(now)+time.Millisecond-1)/time.Millisecond))
}

// tick announces notices held back by their pace, and makes the calls to
// Status and Heartbeat that are due.
func (s *Server) tick(now time.Time) {
	if s.unshown > 0 && s.notices.wait(now, noticeRate, noticeBurst) == 0 {
		s.notices.spend()
		s.broadcast(nil, msg("*** ", strconv.Itoa(s.unshown),
			" more joined or left meanwhile; /who lists who is here"))
		s.unshown = 0
	}

	if s.status.changed && s.cfg.Status != nil && now.Sub(s.status.last) >= statusEvery {
		s.status = statusClock{last: now}
		s.cfg.Status(s.stats())
	}

	if s.cfg.Heartbeat != nil && s.cfg.HeartbeatEvery > 0 && !now.Before(s.heartbeat) {
		s.cfg.Heartbeat()
		s.heartbeat = now.Add(s.cfg.HeartbeatEvery)
	}
}

// beginShutdown stops accepting, tells every client the server is going,
// and lets their queues flush until the shutdown deadline.
func (s *Server) beginShutdown(now time.Time) {
	s.log.Info("shutting down", "online", len(s.nicks))
	s.stopAt = now.Add(s.cfg.ShutdownTimeout)
	s.closeListeners()

	bye := msg("*** server shutting down")
	for _, c := range s.clients {
		if c.leave == "" {
			s.send(c, bye)
			s.part(c, "server shutting down", "")
		}
	}
}

// closeListeners closes the listening sockets. Under systemd, the socket
// unit keeps its own copy listening.
func (s *Server) closeListeners() {
	for _, fd := range s.listeners {
		_ = unix.Close(fd)
	}
	s.listeners = nil
}

// closeAll closes every fd the server holds, at the end of Serve.
func (s *Server) closeAll() {
	for _, c := range s.clients {
		if c.fd >= 0 {
			_ = unix.Close(c.fd)
		}
	}
	s.clients = nil
	s.closeListeners()

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake >= 0 {
		_ = unix.Close(s.wake)
		s.wake = -1
	}
}
