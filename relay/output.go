package relay

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// send queues msg to c. A client is judged too slow by what is left of its
// queue after a write (see flush), not by how much one turn of the loop
// queues: many senders in one turn can queue more than the limit to a
// reader that keeps up. So a queue that would pass the limit is written out
// at once, ahead of the turn's flush, and only a client that cannot take it
// (its kernel buffer full) and is twice over the limit is dropped here.
func (s *Server) send(c *client, m []byte) {
	if !c.abort && c.queued+len(m) > s.cfg.SendQ && !c.blocked {
		s.writeOut(c)
	}

	switch {
	case c.abort, c.deaf:
	case !c.queue(m, 2*s.cfg.SendQ):
		s.tooSlow(c)
	default:
		s.markDirty(c)
	}
}

// tooSlow drops c, whose queue is over its limit.
func (s *Server) tooSlow(c *client) {
	s.log.Warn("send queue full", "nick", c.nick, "addr", c.addr, "queued", c.queued)
	s.drop(c, "send queue full")
}

// broadcast sends msg to everyone in the room but from.
func (s *Server) broadcast(from *client, m []byte) {
	for _, c := range s.clients {
		if c != from && c.inRoom && c.leave == "" {
			s.send(c, m)
		}
	}
}

// notice broadcasts a join or leave notice about c. Notices are paced for
// the whole room, since clients that connect and disconnect in a loop,
// from as many addresses as they like, could otherwise fill everyone's
// screen with them: past the pace they are counted instead, and the count
// is announced when the pace allows (see tick).
func (s *Server) notice(c *client, m []byte, now time.Time) {
	// While some are counted, later ones join the count, so that the
	// count comes first.
	if s.unshown > 0 || s.notices.wait(now, noticeRate, noticeBurst) > 0 {
		s.unshown++
		return
	}

	s.notices.spend()
	s.broadcast(c, m)
}

// markDirty notes that c has new output for the next flush.
func (s *Server) markDirty(c *client) {
	if !c.dirty {
		c.dirty = true
		s.dirty = append(s.dirty, c)
	}
}

// flush gives each client with new output one gathering write of it all,
// and drops those that cannot keep up: more than Config.SendQ is left.
func (s *Server) flush() {
	for _, c := range s.dirty {
		c.dirty = false
		if c.abort {
			continue
		}

		if !c.blocked {
			s.writeOut(c)
		}

		if c.queued > s.cfg.SendQ && !c.abort {
			s.tooSlow(c)
		}
	}

	clear(s.dirty)
	s.dirty = s.dirty[:0]
}

// writeOut writes as much of c's queue as the kernel takes. If it takes
// less, c waits for POLLOUT; if the write fails, c is dropped.
func (s *Server) writeOut(c *client) {
	for c.queued > 0 {
		// Writes are limited to IOV_MAX buffers; a longer queue takes
		// another round.
		s.iovs = append(s.iovs[:0], c.out[0][c.sent:])
		s.iovs = append(s.iovs, c.out[1:min(len(c.out), 1024)]...)

		want := 0
		for _, b := range s.iovs {
			want += len(b)
		}

		n, err := writev(c.fd, s.iovs)
		clear(s.iovs)
		switch {
		case isAgain(err):
			c.blocked = true
			return
		case err != nil && c.leave == "":
			// The peer is gone, but what it sent may still be unread.
			s.deafen(c)
			return
		case err != nil:
			s.drop(c, reason(err))
			return
		}

		c.wrote(n)
		if n < want {
			c.blocked = true
			return
		}
	}
}

// deafen stops all output to c, whose connection can no longer be written
// to, but keeps it in the room until the input it has sent is handled (then
// the read that follows fails or ends, and c leaves), or for deafTime at
// most.
func (s *Server) deafen(c *client) {
	if !c.deaf {
		c.deaf, c.deafBy = true, time.Now().Add(deafTime)
	}
	c.out, c.sent, c.queued, c.blocked = nil, 0, 0, false
}

// reason turns a read or write error into a disconnect reason for the log.
func reason(err error) string {
	switch {
	case errors.Is(err, unix.ECONNRESET):
		return "connection reset"
	case errors.Is(err, unix.EPIPE):
		return "connection closed"
	case errors.Is(err, unix.ETIMEDOUT):
		return "connection timed out"
	}

	return err.Error()
}
