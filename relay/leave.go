package relay

import (
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// part makes c leave the room once its output is flushed; quit is its own
// reason, shown to the others. Input held back by the line rate is
// dropped: there is no one left to send it to.
func (s *Server) part(c *client, why, quit string) {
	if c.leave == "" {
		c.leave, c.quit = why, quit
		c.in = nil
		s.reap = true
	}
}

// drop makes c leave at once, without flushing its output.
func (s *Server) drop(c *client, why string) {
	s.part(c, why, "")
	c.abort = true
}

// departures takes the clients that are leaving out of the room and tells
// the others. Telling them can overflow a queue and make another leave, so
// it goes on until no one is left to take out.
func (s *Server) departures(now time.Time) {
	for s.reap {
		s.reap = false
		for _, c := range s.clients {
			if !c.inRoom || c.leave == "" {
				continue
			}

			c.inRoom = false
			delete(s.nicks, strings.ToLower(c.nick))
			s.gone++
			s.status.changed = true
			s.log.Info("disconnected", "nick", c.nick, "addr", c.addr, "reason", c.leave)

			// While stopping, the shutdown deadline bounds everyone, and
			// there is no one left to tell.
			if !s.stopAt.IsZero() {
				c.closeBy = s.stopAt
				continue
			}
			c.closeBy = now.Add(lingerTime)

			m := msg("*** ", c.nick, " left")
			if c.quit != "" {
				m = msg("*** ", c.nick, " left (", c.quit, ")")
			}
			s.notice(c, m, now)
		}
	}
}

// closeDone closes the connections of clients that have left and have
// nothing more to send or wait for.
func (s *Server) closeDone(now time.Time) {
	open := s.clients[:0]
	for _, c := range s.clients {
		if c.inRoom || !s.finished(c, now) {
			open = append(open, c)
			continue
		}

		s.closeConn(c)
	}

	clear(s.clients[len(open):])
	s.clients = open
}

// finished reports whether c, which has left, can be closed now, and sends
// it EOF once its queue is flushed. After our EOF, c is waited for until it
// sends its own (so that closing does not reset the connection under what it
// has yet to read), but no longer than closeBy, which also bounds the flush.
func (s *Server) finished(c *client, now time.Time) bool {
	switch {
	case c.abort, !now.Before(c.closeBy):
		return true
	case c.queued > 0:
		return false
	case c.eof:
		return true
	case !c.shut:
		closeWrite(c.fd)
		c.shut = true
	}

	return false
}

// closeConn closes c's connection and forgets it.
func (s *Server) closeConn(c *client) {
	if c.ip != "" {
		if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
			delete(s.perIP, c.ip)
		}
	}

	_ = unix.Close(c.fd)
	c.fd = -1
	s.gone--
}
