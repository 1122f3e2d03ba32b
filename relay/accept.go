package relay

import (
	"errors"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// acceptAll accepts on every listener that poll found ready.
func (s *Server) acceptAll(now time.Time) {
	for i, fd := range s.listeners {
		if s.pfds[1+i].Revents != 0 {
			s.acceptFrom(fd, now)
		}
	}
}

// acceptFrom admits the connections waiting on listener fd, up to a batch.
func (s *Server) acceptFrom(fd int, now time.Time) {
	for range 64 {
		cfd, sa, err := accept(fd)
		switch {
		case err == nil:
			s.admit(cfd, sa, now)
		case isAgain(err):
			return
		case connError(err):
			// That connection failed while it waited; take the next one.
		default:
			// Out of fds or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) or
			// worse: the connection stays queued, so pause rather than
			// have poll report it again at once. Log the start of a run
			// of pauses, not each one.
			if now.Sub(s.acceptAt) > time.Second {
				s.log.Warn("accept failed; pausing", "err", err, "pause", acceptBackoff)
			}
			s.acceptAt = now.Add(acceptBackoff)
			return
		}
	}
}

// connError reports whether err, from accept, is about the one connection
// being accepted (which accept4 passes on from the network) rather than the
// listener or the process.
func connError(err error) bool {
	for _, e := range []unix.Errno{unix.ECONNABORTED, unix.EPROTO, unix.ENETDOWN,
		unix.ENETUNREACH, unix.EHOSTDOWN, unix.EHOSTUNREACH, unix.ENONET,
		unix.ENOPROTOOPT, unix.EOPNOTSUPP, unix.EPERM} {
		if errors.Is(err, e) {
			return true
		}
	}

	return false
}

// admit lets connection fd into the room, or refuses it if a limit is hit.
// The limits count open connections, so one that has left the room but is
// still being closed keeps its place.
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
		c.nick = "guest" + strconv.Itoa(s.guests)
		if s.nicks[c.nick] == nil {
			break
		}
	}

	s.nicks[c.nick] = c
	c.inRoom = true
	s.status.changed = true
	s.log.Info("connected", "nick", c.nick, "addr", addr)

	s.send(c, msg("*** welcome to chatd, you are ", c.nick, "; ", strconv.Itoa(len(s.nicks)),
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
