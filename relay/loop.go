package relay

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
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

		// Report to the caller when due.
		s.tick(now)

		// Wait for events or the next timer.
		n, err := poll(s.pfds, s.pollSet(now))
		if err != nil {
			return fmt.Errorf("relay: %w", err)
		}

		s.turns.Add(1)
		now = time.Now()
		if n > 0 {
			s.events(now)
		}

		// Let clients held back by their line rate go on.
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
// the listeners, then the clients in the order of s.clients.
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

	for _, c := range s.clients {
		pfd := unix.PollFd{Fd: int32(c.fd)}
		if c.readable(now) {
			pfd.Events |= unix.POLLIN
		} else if len(c.in) > 0 || now.Before(c.hold) {
			// Held back by its line rate: wake for it when the budget
			// refills, or at once if it just has.
			soonest(c.hold)
		}

		if c.blocked {
			pfd.Events |= unix.POLLOUT
		}

		if !c.inRoom {
			soonest(c.closeBy)
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

// events handles what poll reported.
func (s *Server) events(now time.Time) {
	if s.pfds[0].Revents != 0 {
		// Only Shutdown wakes the loop; its flag is read at the top.
		drainWake(s.wake)
	}

	for i, fd := range s.listeners {
		if s.pfds[1+i].Revents != 0 {
			s.accept(fd, now)
		}
	}

	// Clients accepted just now are past the end of pfds.
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
			s.read(c, now)
		default:
			// An error or hangup on a client that is not being read: it
			// would be reported again on every poll.
			s.drop(c, "connection lost")
		}
	}
}

// accept admits the connections waiting on listener fd, up to a batch.
func (s *Server) accept(fd int, now time.Time) {
	for range 64 {
		cfd, sa, err := accept(fd)
		switch {
		case err == nil:
			s.admit(cfd, sa, now)
		case isAgain(err):
			return
		case errors.Is(err, unix.ECONNABORTED):
			// The peer gave up while waiting; take the next one.
		default:
			// Out of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or
			// worse: the connection stays queued, so pause rather than
			// have poll report it again at once.
			s.log.Warn("accept failed; pausing", "err", err, "pause", acceptBackoff)
			s.acceptAt = now.Add(acceptBackoff)
			return
		}
	}
}

// admit lets connection fd into the room, or refuses it if a limit is hit.
func (s *Server) admit(fd int, sa unix.Sockaddr, now time.Time) {
	addr, ip := peer(sa)
	switch {
	case len(s.clients) >= s.cfg.MaxClients:
		s.refuse(fd, addr, "*** server full, try again later", "too many clients")
		return
	case ip != "" && s.perIP[ip] >= s.cfg.MaxPerIP:
		s.refuse(fd, addr, "*** too many connections from your address", "too many from address")
		return
	}

	c := &client{fd: fd, addr: addr, ip: ip, frame: framer{max: s.cfg.MaxLine}}
	s.clients = append(s.clients, c)
	if ip != "" {
		s.perIP[ip]++
	}

	for {
		s.guests++
		c.nick = "guest" + fmt.Sprint(s.guests)
		if s.nicks[c.nick] == nil {
			break
		}
	}

	s.nicks[c.nick] = c
	c.inRoom = true
	s.status.changed = true
	s.log.Info("connected", "nick", c.nick, "addr", addr)

	s.send(c, msg("*** welcome to chatd, you are ", c.nick, "; ", fmt.Sprint(len(s.nicks)),
		" online; /help for commands"))
	s.notice(c, msg("*** ", c.nick, " joined"), now)
}

// refuse tells connection fd why it cannot stay, and closes it.
func (s *Server) refuse(fd int, addr, line, reason string) {
	// Best effort: a new socket's buffer has room for one line, and if the
	// peer is gone already there is no one to tell.
	_, _ = writev(fd, [][]byte{msg(line)})
	closeWrite(fd)
	_ = unix.Close(fd)
	s.log.Warn("refused", "addr", addr, "reason", reason)
}

// peer returns the address of a peer for logs, and its IP address as the
// key for per-address limits ("" for a UNIX socket peer).
func peer(sa unix.Sockaddr) (addr, ip string) {
	var ap netip.AddrPort
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		ap = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
	case *unix.SockaddrInet6:
		// Unmap, so that IPv4 clients of a dual-stack socket count as IPv4.
		ap = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
	case *unix.SockaddrUnix:
		return "unix:" + sa.Name, ""
	default:
		return "unknown", ""
	}

	return ap.String(), ap.Addr().String()
}

// read reads one chunk from c and handles the lines in it.
func (s *Server) read(c *client, now time.Time) {
	n, err := read(c.fd, s.rbuf)
	switch {
	case isAgain(err):
		return
	case err != nil:
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

	var reply []byte
	s.fbuf, reply = c.tel.Feed(s.fbuf[:0], nil, s.rbuf[:n])
	if reply != nil {
		s.send(c, reply)
	}

	s.lines(c, s.fbuf, now)
}

// resume handles the input of clients whose line budget has refilled.
func (s *Server) resume(now time.Time) {
	for _, c := range s.clients {
		if len(c.in) > 0 && !now.Before(c.hold) && c.leave == "" {
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
		if rest := c.frame.rest(); rest != nil {
			s.line(c, rest, false)
		}
		s.part(c, "closed by peer", "")
	}
}

// send queues msg to c. A client is judged too slow by what is left of its
// queue after a write (see flush), not by how much one turn of the loop
// queues: many senders in one turn can queue more than the limit to a
// reader that keeps up. So a queue that would pass the limit is written out
// at once, before the turn's flush, and only a client that cannot take it
// (its kernel buffer full) and is twice over the limit is dropped here.
func (s *Server) send(c *client, m []byte) {
	if !c.abort && c.queued+len(m) > s.cfg.SendQ && !c.blocked {
		s.write(c)
	}

	switch {
	case c.abort:
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
	if s.notices.wait(now, noticeRate, noticeBurst) > 0 {
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

// part makes c leave the room once its output is flushed; quit is its own
// reason, shown to the others.
func (s *Server) part(c *client, why, quit string) {
	if c.leave == "" {
		c.leave, c.quit = why, quit
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
			c.closeBy = now.Add(lingerTime)
			if !s.stopAt.IsZero() {
				c.closeBy = s.stopAt
			}
			delete(s.nicks, strings.ToLower(c.nick))
			s.gone++
			s.status.changed = true
			s.log.Info("disconnected", "nick", c.nick, "addr", c.addr, "reason", c.leave)

			if !s.stopAt.IsZero() {
				continue
			}

			m := msg("*** ", c.nick, " left")
			if c.quit != "" {
				m = msg("*** ", c.nick, " left (", c.quit, ")")
			}
			s.notice(c, m, now)
		}
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
			s.write(c)
		}

		if c.queued > s.cfg.SendQ && !c.abort {
			s.tooSlow(c)
		}
	}

	clear(s.dirty)
	s.dirty = s.dirty[:0]
}

// write writes as much of c's queue as the kernel takes. If it takes less,
// c waits for POLLOUT; if the write fails, c is dropped.
func (s *Server) write(c *client) {
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

// closeDone closes the connections of clients that have left and have
// nothing more to send or wait for, and sends EOF to those that are done
// sending.
func (s *Server) closeDone(now time.Time) {
	open := s.clients[:0]
	for _, c := range s.clients {
		if c.inRoom || !s.done(c, now) {
			open = append(open, c)
			continue
		}

		s.close(c)
	}

	clear(s.clients[len(open):])
	s.clients = open
}

// done reports whether c, which has left, can be closed now. A client whose
// queue is flushed is sent EOF first, and then waited for until it sends its
// own EOF (so that closing does not reset the connection under what it has
// yet to read) or closeBy passes.
func (s *Server) done(c *client, now time.Time) bool {
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

// close closes c's connection and forgets it.
func (s *Server) close(c *client) {
	if c.ip != "" {
		if s.perIP[c.ip]--; s.perIP[c.ip] <= 0 {
			delete(s.perIP, c.ip)
		}
	}

	_ = unix.Close(c.fd)
	c.fd = -1
	s.gone--
}

// beginShutdown stops accepting, tells every client the server is going,
// and lets their queues flush until the shutdown deadline.
func (s *Server) beginShutdown(now time.Time) {
	s.log.Info("shutting down", "online", len(s.nicks))
	s.stopAt = now.Add(s.cfg.ShutdownTimeout)

	for _, fd := range s.listeners {
		_ = unix.Close(fd)
	}
	s.listeners = nil

	bye := msg("*** server shutting down")
	for _, c := range s.clients {
		if c.leave == "" {
			s.send(c, bye)
			s.part(c, "server shutting down", "")
		}
	}
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

// closeAll closes every fd the server holds, at the end of Serve.
func (s *Server) closeAll() {
	for _, c := range s.clients {
		if c.fd >= 0 {
			_ = unix.Close(c.fd)
		}
	}
	s.clients = nil

	for _, fd := range s.listeners {
		_ = unix.Close(fd)
	}
	s.listeners = nil

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake >= 0 {
		_ = unix.Close(s.wake)
		s.wake = -1
	}
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
