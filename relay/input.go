package relay

import (
	"time"

	"golang.org/x/sys/unix"
)

// readAll handles what poll reported for each client: it reads from those
// with input or an error, and unblocks those whose kernel buffer has room.
func (s *Server) readAll(now time.Time) {
	// Clients accepted in this turn are past the end of pfds.
	base := 1 + len(s.listeners)
	for i, c := range s.clients[:len(s.pfds)-base] {
		ev := s.pfds[base+i].Revents
		if ev&unix.POLLOUT != 0 {
			c.blocked = false
			s.markDirty(c)
		}

		switch {
		case ev&(unix.POLLIN|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) == 0:
		case c.readable(now):
			// Reading tells data from EOF from an error.
			s.readFrom(c, now)
		case c.leave == "" && ev&unix.POLLNVAL == 0:
			// The connection failed under a client whose input is held
			// back by its line rate: deliver that input first.
			s.deafen(c)
		default:
			// An error or hangup on a client that is not being read: it
			// would be reported again on every poll.
			s.drop(c, "connection lost")
		}
	}
}

// readFrom reads one chunk from c and handles the lines in it.
func (s *Server) readFrom(c *client, now time.Time) {
	n, err := read(c.fd, s.rbuf)
	switch {
	case isAgain(err):
		return
	case err != nil:
		// The connection failed, but an unfinished last line was still
		// said, as it would be at EOF.
		s.lastLine(c)
		s.drop(c, reason(err))
		return
	case n == 0:
		c.eof = true
	}

	if c.leave != "" {
		// Waiting for the EOF of a client that left: what it sends now is
		// for no one.
		return
	}

	s.input(c, s.rbuf[:n], now)
}

// input handles p, bytes just read from c (none at EOF): telnet commands
// are answered and removed, and the lines of what is left acted on.
func (s *Server) input(c *client, p []byte, now time.Time) {
	var reply []byte
	s.fbuf, reply = c.tel.Feed(s.fbuf[:0], nil, p)
	if reply != nil {
		s.send(c, reply)
	}

	s.lines(c, s.fbuf, now)
}

// resume handles the input of clients whose line budget has refilled, and
// drops deaf clients whose time to finish is up. Clients held back in this
// turn have budgets that refill later, so the flag pollSet sets is enough to
// tell whether there is anyone to look at.
func (s *Server) resume(now time.Time) {
	if !s.held {
		return
	}

	for _, c := range s.clients {
		switch {
		case c.leave != "":
		case c.deaf && !now.Before(c.deafBy):
			s.log.Warn("held lines dropped", "nick", c.nick, "addr", c.addr, "bytes", len(c.in))
			s.drop(c, "connection lost")
		case len(c.in) > 0 && !now.Before(c.hold):
			s.lines(c, c.in, now)
		}
	}
}

// lines handles the lines in p, input from c, as far as c's line budget
// allows, and keeps the rest in c.in for later. At c's EOF it handles the
// unfinished last line too, and makes c leave.
func (s *Server) lines(c *client, p []byte, now time.Time) {
	for len(p) > 0 && c.leave == "" {
		if wait := c.pace.wait(now, s.cfg.Rate, float64(s.cfg.Burst)); wait > 0 {
			c.hold = now.Add(wait)
			if !c.paced {
				c.paced = true
				s.log.Info("line rate reached; reading slower", "nick", c.nick, "addr", c.addr)
			}
			break
		}

		line, n, kind := c.frame.next(p)
		p = p[n:]
		if kind != frameNone {
			c.pace.spend()
			s.line(c, line, kind == frameCut)
		}
	}

	if len(p) > 0 && c.leave == "" {
		c.in = append(c.in[:0], p...)
		return
	}
	c.in = nil

	if c.eof && c.leave == "" {
		s.lastLine(c)
		s.part(c, "closed by peer", "")
	}
}

// lastLine acts on what c sent after its last line end, now that nothing
// more will come.
func (s *Server) lastLine(c *client) {
	if rest := c.frame.rest(); rest != nil && c.leave == "" {
		s.line(c, rest, false)
	}
}
