package relay

import (
	"time"

	"github.com/chatd/chatd/relay/telnet"
)

// client is one connection. All of it belongs to the loop.
type client struct {
	fd   int
	addr string // peer address, for logs
	ip   string // key in Server.perIP; empty for peers with no IP address

	nick   string // unique in the room, without regard to case
	inRoom bool   // counted, listed and sent to; false once it has left

	tel   telnet.Filter
	frame framer
	in    []byte    // filtered bytes held back by the rate limit, at most readChunk
	pace  bucket    // line budget
	hold  time.Time // not read before this, while over budget
	paced bool      // has been over budget once (and that was logged)
	eof   bool      // the peer sent EOF; nothing more to read

	// deaf is set once the connection can no longer be written to (the
	// peer reset it or closed it) while what the client typed may still be
	// unread or held back by its line rate: that input still goes out at
	// its pace until deafBy, and output to the client is thrown away.
	deaf   bool
	deafBy time.Time

	out     [][]byte // queued messages, shared with other recipients
	sent    int      // bytes of out[0] already written
	queued  int      // bytes in out not yet written; see Config.SendQ
	dirty   bool     // in Server.dirty
	blocked bool     // the kernel's send buffer is full; waiting for POLLOUT

	// leave is why the client is leaving the room, for the log; empty while
	// it stays. Once it is set the client gets no new messages, and the next
	// reap takes it out of the room and tells the others, with quit (its
	// own /quit reason) if any. If abort is set the connection is closed as
	// soon as it is reaped; otherwise its queue is flushed first, then it is
	// sent EOF and closed when the peer's EOF comes, or at closeBy anyway.
	leave   string
	quit    string
	abort   bool
	shut    bool      // EOF sent
	closeBy time.Time // close by then, flushed or not
}

// queue adds msg to c's output. It reports false, queueing nothing, if that
// would take c over max bytes.
func (c *client) queue(msg []byte, max int) bool {
	if c.queued+len(msg) > max {
		return false
	}

	c.out = append(c.out, msg)
	c.queued += len(msg)
	return true
}

// wrote drops the first n bytes of c's output, which have been written.
func (c *client) wrote(n int) {
	c.queued -= n
	for n > 0 {
		left := len(c.out[0]) - c.sent
		if n < left {
			c.sent += n
			return
		}

		n -= left
		c.out[0] = nil
		c.out = c.out[1:]
		c.sent = 0
	}

	if len(c.out) == 0 {
		// Reslicing has moved past the array's start; let it go.
		c.out = nil
	}
}

// readable reports whether the loop should read from c at time now.
func (c *client) readable(now time.Time) bool {
	return !c.eof && len(c.in) == 0 && (c.leave == "" || c.shut) && !now.Before(c.hold)
}
