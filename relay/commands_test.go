package relay

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzLines feeds arbitrary bytes from three clients through the whole
// input path (telnet filter, framer, cleaning, commands) of a server with
// no sockets, and checks what the room holds and what it queued.
func FuzzLines(f *testing.F) {
	f.Add([]byte("/nick alice\r\nhello\r\n"), []byte("/msg ALICE hi\n/who\n"), []byte("/quit bye"))
	f.Add([]byte("/nick Bob\n"), []byte("/nick bob\n/me \x1b[31mwaves\n"),
		[]byte("//x\n/nick guest1\n"))
	f.Fuzz(func(t *testing.T, a, b, c []byte) {
		s, err := New(Config{MaxLine: 64, SendQ: 4096})
		if err != nil {
			t.Fatal(err)
		}

		var cs []*client
		for range 3 {
			s.admit(-1, nil, time.Time{})
			cs = append(cs, s.clients[len(s.clients)-1])
		}

		// Interleave the three inputs in chunks of 7 bytes.
		ins := [][]byte{a, b, c}
		for off := 0; off < max(len(a), len(b), len(c)); off += 7 {
			for i, in := range ins {
				if off < len(in) {
					s.feed(cs[i], in[off:min(off+7, len(in))])
				}
			}
			s.departures(s.stopAt)
		}

		for _, c := range cs {
			s.feed(c, nil) // EOF
		}
		s.departures(s.stopAt)

		checkRoom(t, s)
		for _, c := range cs {
			checkQueue(t, c)
		}
	})
}

// feed gives c the bytes in p as if read from its socket; nil means EOF.
func (s *Server) feed(c *client, p []byte) {
	if c.leave == "" {
		c.eof = p == nil
		s.input(c, p, time.Time{})
	}
}

// checkRoom checks that the nick index matches the clients in the room.
func checkRoom(t *testing.T, s *Server) {
	t.Helper()

	in := 0
	for _, c := range s.clients {
		if !c.inRoom {
			continue
		}

		in++
		if problem := checkNick(c.nick); problem != "" {
			t.Errorf("nick in the room: got %q (%s), want a valid one", c.nick, problem)
		}

		if s.nicks[strings.ToLower(c.nick)] != c {
			t.Errorf("nick index: got no entry for %q, want one", c.nick)
		}
	}

	if in != len(s.nicks) {
		t.Errorf("nick index: got %d entries, want %d, one per client in the room", len(s.nicks), in)
	}
}

// checkQueue checks that every line queued to c is clean text with CRLF.
func checkQueue(t *testing.T, c *client) {
	t.Helper()

	for _, m := range c.out {
		if len(m) > 0 && m[0] == 0xFF {
			continue // a telnet refusal
		}

		line, ok := bytes.CutSuffix(m, []byte("\r\n"))
		if !ok || !utf8.Valid(line) {
			t.Fatalf("queued: got %q, want one line of UTF-8 with CRLF", m)
		}

		for _, r := range string(line) {
			if unicode.IsControl(r) || hidden(r) {
				t.Fatalf("queued: got %q, holding %U, want no control", m, r)
			}
		}
	}
}
