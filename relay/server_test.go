package relay_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/chatd/chatd/relay"
)

// wait bounds every blocking step of these tests.
const wait = 5 * time.Second

// start runs a Server with cfg on a loopback port and returns it with its
// address. The server is shut down, and Serve's result checked, at cleanup.
func start(t testing.TB, cfg relay.Config) (*relay.Server, string) {
	t.Helper()

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	addr := l.Addr().String()

	f, err := l.(*net.TCPListener).File()
	l.Close()
	if err != nil {
		t.Fatalf("listener file: %v", err)
	}

	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		t.Fatalf("dup: %v", err)
	}

	if err := unix.SetNonblock(fd, true); err != nil {
		t.Fatalf("set non-blocking: %v", err)
	}

	srv, err := relay.New(cfg)
	if err != nil {
		t.Fatalf("relay.New: %v", err)
	}

	r := &serving{done: make(chan struct{})}
	runs.Store(srv, r)
	go func() {
		r.err = srv.Serve([]int{fd})
		close(r.done)
	}()

	t.Cleanup(func() {
		srv.Shutdown()
		if err := stopped(t, srv); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})

	return srv, addr
}

// serving is a Serve call that start made.
type serving struct {
	done chan struct{} // closed when Serve has returned
	err  error         // what it returned
}

// runs maps each Server that start made to its serving.
var runs sync.Map

// stopped waits for srv's Serve to return, and returns its error.
func stopped(t testing.TB, srv *relay.Server) error {
	t.Helper()

	r, _ := runs.Load(srv)
	select {
	case <-r.(*serving).done:
		return r.(*serving).err
	case <-time.After(wait):
		t.Fatalf("Serve did not return after Shutdown")
		return nil
	}
}

// conn is a test client.
type conn struct {
	t testing.TB
	c *net.TCPConn
	r *bufio.Reader
}

// dial connects to addr and reads the greeting.
func dial(t testing.TB, addr string) *conn {
	t.Helper()

	c := dialRaw(t, addr)
	c.expectPrefix("*** welcome to chatd, you are ")
	return c
}

// dialRaw connects to addr and reads nothing.
func dialRaw(t testing.TB, addr string) *conn {
	t.Helper()

	nc, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { nc.Close() })

	return &conn{t: t, c: nc.(*net.TCPConn), r: bufio.NewReader(nc)}
}

// send writes raw bytes.
func (c *conn) send(s string) {
	c.t.Helper()

	c.c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c.c, s); err != nil {
		c.t.Fatalf("write %q: %v", s, err)
	}
}

// line reads one line and checks that it ends in CRLF.
func (c *conn) line() string {
	c.t.Helper()

	c.c.SetReadDeadline(time.Now().Add(wait))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: got %q, %v", l, err)
	}

	l, ok := strings.CutSuffix(l, "\r\n")
	if !ok {
		c.t.Fatalf("read line: got %q, want it to end in CRLF", l)
	}

	return l
}

// expect reads one line and checks it is want.
func (c *conn) expect(want string) {
	c.t.Helper()

	if got := c.line(); got != want {
		c.t.Fatalf("read: got %q, want %q", got, want)
	}
}

// expectPrefix reads one line and checks it starts with prefix.
func (c *conn) expectPrefix(prefix string) string {
	c.t.Helper()

	got := c.line()
	if !strings.HasPrefix(got, prefix) {
		c.t.Fatalf("read: got %q, want a line starting %q", got, prefix)
	}

	return got
}

// expectEOF checks that the server closes the connection with nothing more
// to read.
func (c *conn) expectEOF() {
	c.t.Helper()

	c.c.SetReadDeadline(time.Now().Add(wait))
	l, err := c.r.ReadString('\n')
	if err != io.EOF || l != "" {
		c.t.Fatalf("read: got %q, %v, want EOF", l, err)
	}
}

// numbered returns n lines, formatted with format from the line's number
// and then args, as one string to send at once.
func numbered(n int, format string, args ...any) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, format, append([]any{i}, args...)...)
	}

	return b.String()
}

// skipTo reads lines until one starts with prefix.
func (c *conn) skipTo(prefix string) {
	c.t.Helper()

	for !strings.HasPrefix(c.line(), prefix) {
	}
}

// sync makes sure everything c sent before has been handled: a bare /nick
// is answered with one line, in order, after the lines before it.
func (c *conn) sync() {
	c.t.Helper()

	c.send("/nick\r\n")
	c.expect("*** usage: /nick NAME")
}

// silent checks that nothing has arrived for c by the time another round
// trip through the server is done.
func (c *conn) silent() {
	c.t.Helper()

	c.sync()
	c.expectNothingBuffered()
}

// expectNothingBuffered checks that no unread line is waiting.
func (c *conn) expectNothingBuffered() {
	c.t.Helper()

	if n := c.r.Buffered(); n > 0 {
		b, _ := c.r.Peek(n)
		c.t.Fatalf("read: got %q, want nothing", b)
	}
}

// room starts a server and connects the named clients, each with its nick
// set, everyone having seen everyone join.
func room(t *testing.T, cfg relay.Config, nicks ...string) (
	*relay.Server, string, map[string]*conn) {
	t.Helper()

	srv, addr := start(t, cfg)
	cs := make(map[string]*conn)
	var order []*conn
	for _, n := range nicks {
		c := dial(t, addr)
		for _, o := range order {
			o.expectPrefix("*** guest")
		}

		c.send("/nick " + n + "\r\n")
		c.expect("*** you are now " + n)
		for _, o := range order {
			o.expectPrefix("*** guest")
		}

		order = append(order, c)
		cs[n] = c
	}

	return srv, addr, cs
}

func TestWelcomeAndJoin(t *testing.T) {
	_, addr := start(t, relay.Config{})
	a := dial(t, addr)
	b := dialRaw(t, addr)
	b.expect("*** welcome to chatd, you are guest2; 2 online; /help for commands")
	a.expect("*** guest2 joined")
	a.silent()
}

func TestProtocol(t *testing.T) {
	tests := []struct {
		name  string
		send  string   // what alice sends
		alice []string // what alice then sees
		bob   []string // what bob then sees
	}{
		{name: "plain line", send: "hello\r\n", bob: []string{"<alice> hello"}},
		{name: "LF line end", send: "hello\n", bob: []string{"<alice> hello"}},
		{name: "CR NUL line end", send: "hello\r\x00", bob: []string{"<alice> hello"}},
		{name: "empty line", send: "\r\n"},
		{name: "blank line", send: "  \t \r\n"},
		{name: "nick", send: "/nick alice2\r\n",
			alice: []string{"*** you are now alice2"}, bob: []string{"*** alice is now alice2"}},
		{name: "nick taken", send: "/nick BOB\r\n", alice: []string{"*** BOB is taken"}},
		{name: "nick too long", send: "/nick abcdefghijklmnopq\r\n",
			alice: []string{"*** a nick is at most 16 characters"}},
		{name: "nick with bad characters", send: "/nick a*b\r\n",
			alice: []string{"*** a nick has only letters, digits, _ and -"}},
		{name: "nick missing", send: "/nick\r\n", alice: []string{"*** usage: /nick NAME"}},
		{name: "nick unchanged", send: "/nick alice\r\n",
			alice: []string{"*** you are already alice"}},
		{name: "nick case change", send: "/nick ALICE\r\n",
			alice: []string{"*** you are now ALICE"}, bob: []string{"*** alice is now ALICE"}},
		{name: "me", send: "/me waves\r\n", bob: []string{"* alice waves"}},
		{name: "me without action", send: "/me\r\n", alice: []string{"*** usage: /me ACTION"}},
		{name: "who", send: "/who\r\n", alice: []string{"*** 2 online: alice, bob"}},
		{name: "msg", send: "/msg bob hi there\r\n",
			alice: []string{"-> *bob* hi there"}, bob: []string{"*alice* hi there"}},
		{name: "msg any case", send: "/msg BOB hi\r\n",
			alice: []string{"-> *bob* hi"}, bob: []string{"*alice* hi"}},
		{name: "msg no such nick", send: "/msg carol hi\r\n",
			alice: []string{"*** no one is called carol"}},
		{name: "msg without text", send: "/msg bob\r\n",
			alice: []string{"*** usage: /msg NICK TEXT"}},
		{name: "double slash", send: "//etc\r\n", bob: []string{"<alice> /etc"}},
		{name: "unknown command", send: "/frob x\r\n",
			alice: []string{"*** unknown command /frob; /help lists them"}},
		{name: "command in capitals", send: "/ME shouts\r\n", bob: []string{"* alice shouts"}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, cs := room(t, relay.Config{}, "alice", "bob")
			alice, bob := cs["alice"], cs["bob"]

			alice.send(tt.send)
			for _, want := range tt.alice {
				alice.expect(want)
			}

			for _, want := range tt.bob {
				bob.expect(want)
			}

			alice.silent()
			bob.silent()
		})
	}
}

func TestWhoInACrowd(t *testing.T) {
	const clients = 60

	_, addr := start(t, relay.Config{MaxPerIP: clients})
	var last *conn
	for range clients {
		last = dial(t, addr)
	}

	// 60 guest nicks take more than one line; together they list everyone.
	last.send("/who\r\n")
	l := last.line()
	for !strings.HasPrefix(l, fmt.Sprintf("*** %d online: guest1, ", clients)) {
		l = last.line() // join notices that came first
	}

	lines, nicks := 1, strings.Count(l, "guest")
	for strings.HasSuffix(l, ",") {
		if l = last.line(); !strings.HasPrefix(l, "*** guest") {
			t.Fatalf("who: got %q, want a line of nicks", l)
		}
		lines, nicks = lines+1, nicks+strings.Count(l, "guest")
	}

	if lines < 2 || nicks != clients {
		t.Fatalf("who: got %d nicks on %d lines, want %d on more than one", nicks, lines, clients)
	}
}

func TestHelp(t *testing.T) {
	_, _, cs := room(t, relay.Config{}, "alice", "bob")
	cs["alice"].send("/help\r\n")
	for _, cmd := range []string{"/nick", "/me", "/who", "/msg", "/quit", "/help", "//"} {
		cs["alice"].expectPrefix("*** " + cmd)
	}

	cs["alice"].silent()
	cs["bob"].silent()
}

func TestLineInPieces(t *testing.T) {
	_, _, cs := room(t, relay.Config{}, "alice", "bob")
	alice, bob := cs["alice"], cs["bob"]

	// Round trips through bob give the server time to read each piece
	// on its own; the framer's own tests split at every byte.
	alice.send("hel")
	bob.sync()
	alice.send("lo\r")
	bob.expect("<alice> hello")

	// The LF of a CRLF split after the CR ends no second line.
	alice.send("\nnext\n")
	bob.expect("<alice> next")
	bob.silent()
}

func TestQuit(t *testing.T) {
	tests := []struct {
		name, send, others string
	}{
		{"with reason", "/quit off to bed\r\n", "*** alice left (off to bed)"},
		{"without reason", "/quit\r\n", "*** alice left"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, cs := room(t, relay.Config{}, "alice", "bob")
			cs["alice"].send(tt.send + "more after quit\r\n")
			cs["alice"].expect("*** bye")
			cs["alice"].expectEOF()
			cs["bob"].expect(tt.others)
			cs["bob"].send("/who\r\n")
			cs["bob"].expect("*** 1 online: bob")
		})
	}
}

func TestDisconnect(t *testing.T) {
	tests := []struct {
		name  string
		close func(c *net.TCPConn)
	}{
		{"close", func(c *net.TCPConn) { c.Close() }},
		{"half-close", func(c *net.TCPConn) { c.CloseWrite() }},
		{"reset", func(c *net.TCPConn) { c.SetLinger(0); c.Close() }},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _, cs := room(t, relay.Config{}, "alice", "bob")
			tt.close(cs["alice"].c)
			cs["bob"].expect("*** alice left")
			cs["bob"].send("/who\r\n")
			cs["bob"].expect("*** 1 online: bob")

			// Idle now: the loop must sleep, not spin on a dead socket.
			before := srv.Turns()
			time.Sleep(300 * time.Millisecond)
			if turns := srv.Turns() - before; turns > 2 {
				t.Errorf("idle loop turns in 300ms: got %d, want at most 2", turns)
			}
		})
	}
}

func TestLastLineWithoutLineEnd(t *testing.T) {
	tests := []struct {
		name  string
		close func(c *net.TCPConn)
	}{
		{"EOF", func(c *net.TCPConn) { c.Close() }},
		{"half-close", func(c *net.TCPConn) { c.CloseWrite() }},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, cs := room(t, relay.Config{}, "alice", "bob")
			cs["alice"].send("last words")
			tt.close(cs["alice"].c)
			cs["bob"].expect("<alice> last words")
			cs["bob"].expect("*** alice left")
			cs["bob"].silent()
		})
	}
}

func TestHalfCloseStillAnswered(t *testing.T) {
	_, addr, cs := room(t, relay.Config{}, "bob")
	c := dial(t, addr)
	cs["bob"].expect("*** guest2 joined")
	c.send("/who\r\nbye")
	c.c.CloseWrite()
	c.expect("*** 2 online: bob, guest2")
	c.expectEOF()
	cs["bob"].expect("<guest2> bye")
	cs["bob"].expect("*** guest2 left")
}

func TestLongLine(t *testing.T) {
	_, _, cs := room(t, relay.Config{MaxLine: 32}, "alice", "bob")
	alice, bob := cs["alice"], cs["bob"]

	// 31 bytes of a, then é straddling the limit.
	alice.send(strings.Repeat("a", 31) + "é and a lot more\r\nshort\r\n")
	bob.expect("<alice> " + strings.Repeat("a", 31))
	alice.expect("*** line too long: cut at 32 bytes")
	bob.expect("<alice> short")

	// A line just at the limit is whole, with no notice.
	alice.send(strings.Repeat("b", 32) + "\r\n")
	bob.expect("<alice> " + strings.Repeat("b", 32))
	alice.silent()
}

func TestIACIACIsReplaced(t *testing.T) {
	_, _, cs := room(t, relay.Config{}, "alice", "bob")
	cs["alice"].send("a\xff\xffb\r\n")
	cs["bob"].expect("<alice> a\uFFFDb")
}

func TestShutdown(t *testing.T) {
	srv, _, cs := room(t, relay.Config{}, "alice", "bob")
	cs["alice"].send("unfinished")
	srv.Shutdown()
	for _, c := range cs {
		c.expect("*** server shutting down")
		c.expectEOF()
	}
}

// TestShutdownWithHeldInput checks that a client held back by its line rate
// does not keep a stopping loop busy: the loop sleeps until the client's EOF
// or the shutdown deadline.
func TestShutdownWithHeldInput(t *testing.T) {
	srv, _, cs := room(t, relay.Config{Rate: 20, Burst: 1, ShutdownTimeout: 500 * time.Millisecond},
		"alice", "bob")
	cs["alice"].send(strings.Repeat("x\r\n", 50))
	cs["bob"].expect("<alice> x")

	before := srv.Turns()
	srv.Shutdown()
	for _, c := range cs {
		c.skipTo("*** server shutting down")
		c.expectEOF()
	}

	// Both keep their sockets open, so Serve waits for the deadline.
	if err := stopped(t, srv); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if turns := srv.Turns() - before; turns > 50 {
		t.Errorf("loop turns while stopping: got %d, want at most 50", turns)
	}
}

func TestSlowReader(t *testing.T) {
	const lines = 20000
	pad := strings.Repeat("x", 100)

	_, addr, cs := room(t, relay.Config{SendQ: 8192}, "writer", "reader")

	// A client that never reads, with the smallest receive buffer the
	// kernel allows, so that its queue fills early.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1024)
		})
		return err
	}}
	stuck, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { stuck.Close() })
	cs["writer"].expect("*** guest3 joined")
	cs["reader"].expect("*** guest3 joined")

	// The reader must see every line in order, and the stuck client leave.
	got := make(chan error, 1)
	go func() {
		r := cs["reader"]
		r.c.SetReadDeadline(time.Now().Add(4 * wait))
		left := false
		for i := 0; i < lines; {
			l, err := r.r.ReadString('\n')
			if err != nil {
				got <- fmt.Errorf("after %d lines: %w", i, err)
				return
			}

			if l == "*** guest3 left\r\n" {
				left = true
				continue
			}

			if want := fmt.Sprintf("<writer> %d %s\r\n", i, pad); l != want {
				got <- fmt.Errorf("line %d: got %q, want %q", i, l, want)
				return
			}
			i++
		}

		for !left {
			l, err := r.r.ReadString('\n')
			if err != nil {
				got <- fmt.Errorf("the stuck client never left: %w", err)
				return
			}
			left = l == "*** guest3 left\r\n"
		}
		got <- nil
	}()

	cs["writer"].send(numbered(lines, "%d %s\n", pad))

	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(4 * wait):
		t.Fatal("reader did not get every line")
	}
}
