package main

// Helpers for the integration tests, which run the real chatd binary on
// loopback: building it, starting it (by hand or socket-activated), a
// NOTIFY_SOCKET that records what it reports, chat clients, and readings
// from /proc. Every blocking step has a deadline; failures read
// "what: got X, want Y".

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// chatdBin is the chatd binary that TestMain builds for the whole package.
var chatdBin string

// Deadlines for the steps of a test. They are generous: a test that meets
// one is slow, not stuck, and a stuck one fails instead of hanging.
const (
	stepTimeout = 10 * time.Second // one line, one exit, one condition
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

// buildAndRun builds chatd into a temporary directory and runs the tests.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "chatd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "build chatd:", err)
		return 1
	}
	defer os.RemoveAll(dir)

	chatdBin = filepath.Join(dir, "chatd")
	build := exec.Command("go", "build", "-o", chatdBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build chatd:", err)
		return 1
	}

	return m.Run()
}

// syncBuffer collects a child's output; it is safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// daemonOpts says how to start chatd.
type daemonOpts struct {
	args   []string   // flags
	env    []string   // extra environment, NAME=value
	files  []*os.File // passed as fds 3, 4, ... with LISTEN_FDS set
	pidEnv []string   // variables set to chatd's own pid (LISTEN_PID, ...)
}

// instance is a running chatd.
type instance struct {
	cmd    *exec.Cmd
	pid    int
	stdout syncBuffer
	stderr syncBuffer
	done   chan struct{} // closed when the process has exited
	err    error         // from Wait, once done is closed
}

// baseEnv is the environment every chatd starts with: nothing inherited
// that could change its behaviour (NOTIFY_SOCKET, LISTEN_*, JOURNAL_STREAM).
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8"}
}

// startDaemon starts chatd and stops it, if still running, when the test
// ends. With files or pidEnv, it is started through sh, which sets those
// variables to its own pid and then execs chatd, so that they name the
// chatd process as socket activation and the watchdog require.
func startDaemon(t *testing.T, o daemonOpts) *instance {
	t.Helper()

	var cmd *exec.Cmd
	pidEnv := o.pidEnv
	if len(o.files) > 0 {
		pidEnv = append(pidEnv, "LISTEN_PID")
	}

	if len(pidEnv) > 0 {
		script := "export " + strings.Join(pidEnv, "=$$ ") + `=$$; exec "$0" "$@"`
		cmd = exec.Command("sh", append([]string{"-c", script, chatdBin}, o.args...)...)
	} else {
		cmd = exec.Command(chatdBin, o.args...)
	}

	cmd.Env = append(baseEnv(), o.env...)
	if len(o.files) > 0 {
		cmd.Env = append(cmd.Env, "LISTEN_FDS="+strconv.Itoa(len(o.files)))
		cmd.ExtraFiles = o.files
	}

	d := &instance{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &d.stdout, &d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chatd: got %v, want it running", err)
	}

	d.pid = cmd.Process.Pid
	go func() {
		d.err = cmd.Wait()
		close(d.done)
	}()

	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = cmd.Process.Kill()
			<-d.done
		}

		if t.Failed() {
			t.Logf("chatd stderr:\n%s", d.stderr.String())
		}
	})

	return d
}

// wait waits for chatd to exit and returns its exit status.
func (d *instance) wait(t *testing.T) int {
	t.Helper()

	select {
	case <-d.done:
	case <-time.After(stepTimeout):
		t.Fatalf("chatd exit: got none after %v, want an exit", stepTimeout)
	}

	var exit *exec.ExitError
	switch {
	case d.err == nil:
		return 0
	case errors.As(d.err, &exit) && exit.Exited():
		return exit.ExitCode()
	}

	t.Fatalf("chatd exit: got %v, want an exit status", d.err)
	return -1
}

// term sends chatd SIGTERM.
func (d *instance) term(t *testing.T) {
	t.Helper()

	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: got %v, want it sent", err)
	}
}

// stop sends chatd SIGTERM, checks that each of the clients is told and
// closed, and that chatd exits 0.
func (d *instance) stop(t *testing.T, clients ...*client) {
	t.Helper()

	d.term(t)
	for _, c := range clients {
		c.expectNext("*** server shutting down")
		c.expectEOF()
	}

	if got := d.wait(t); got != 0 {
		t.Fatalf("exit status after SIGTERM: got %d, want 0", got)
	}
}

// waitLog waits until chatd's stderr holds at least n lines containing each
// of the words, and returns those lines.
func (d *instance) waitLog(t *testing.T, n int, words ...string) []string {
	t.Helper()

	var found []string
	waitFor(t, fmt.Sprintf("%d log lines with %q", n, words), func() bool {
		found = found[:0]
		for line := range strings.Lines(d.stderr.String()) {
			if hasAll(line, words) {
				found = append(found, strings.TrimSpace(line))
			}
		}
		return len(found) >= n
	})

	return found
}

// hasAll reports whether s contains every one of words.
func hasAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, w) {
			return false
		}
	}

	return true
}

// waitFor polls cond until it holds, failing the test after stepTimeout.
// It is for conditions no event announces, such as a count in /proc.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()

	deadline := time.Now().Add(stepTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: got none after %v, want it", what, stepTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tcpListener returns a listening TCP socket on a free loopback port, as a
// file to pass to chatd, and its address. The test's own copy is closed
// when the test ends.
func tcpListener(t *testing.T) (*os.File, string) {
	t.Helper()

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: got %v, want a socket", err)
	}

	addr := l.Addr().String()
	return fileOf(t, l.(*net.TCPListener)), addr
}

// fileOf returns a duplicate of socket c's descriptor as a file, to pass to
// chatd, and closes c. The file is closed when the test ends.
func fileOf(t *testing.T, c interface {
	File() (*os.File, error)
	Close() error
}) *os.File {
	t.Helper()
	defer c.Close()

	f, err := c.File()
	if err != nil {
		t.Fatalf("socket file: got %v, want a file", err)
	}
	t.Cleanup(func() { f.Close() })

	return f
}

// freeAddr returns a loopback address with a port that was free a moment
// ago, for chatd to bind with --listen.
func freeAddr(t *testing.T) string {
	t.Helper()

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: got %v, want a socket", err)
	}
	defer l.Close()

	return l.Addr().String()
}

// startActivated starts chatd socket-activated on a new loopback listener
// and returns it with the listener's address. --listen names a free
// loopback port, so that a chatd that missed the passed socket serves
// neither the test's address nor anything beyond loopback.
func startActivated(t *testing.T, args []string, env ...string) (*instance, string) {
	t.Helper()

	f, addr := tcpListener(t)
	args = append([]string{"--listen", "127.0.0.1:0"}, args...)
	d := startDaemon(t, daemonOpts{args: args, env: env, files: []*os.File{f}})
	f.Close()

	return d, addr
}

// notifySocket is a NOTIFY_SOCKET that records what chatd sends it.
type notifySocket struct {
	conn *net.UnixConn
	name string   // as given in NOTIFY_SOCKET
	msgs []string // every assignment received so far, in order
}

// newNotifySocket listens on a datagram socket named name: a path, or an
// abstract name if it starts with @.
func newNotifySocket(t *testing.T, name string) *notifySocket {
	t.Helper()

	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatalf("notify socket %s: got %v, want a socket", name, err)
	}
	t.Cleanup(func() { conn.Close() })

	return &notifySocket{conn: conn, name: name}
}

// env returns the NOTIFY_SOCKET assignment for chatd.
func (n *notifySocket) env() string {
	return "NOTIFY_SOCKET=" + n.name
}

// record splits one datagram into its assignments and keeps them.
func (n *notifySocket) record(p []byte) {
	for line := range strings.Lines(string(p)) {
		if line = strings.TrimSpace(line); line != "" {
			n.msgs = append(n.msgs, line)
		}
	}
}

// drain records the datagrams already waiting, without blocking, and
// returns everything recorded.
func (n *notifySocket) drain(t *testing.T) []string {
	t.Helper()

	rc, err := n.conn.SyscallConn()
	if err != nil {
		t.Fatalf("notify socket: got %v, want a raw conn", err)
	}

	buf := make([]byte, 4096)
	for {
		got, recvErr := 0, error(nil)
		err := rc.Read(func(fd uintptr) bool {
			got, _, recvErr = unix.Recvfrom(int(fd), buf, unix.MSG_DONTWAIT)
			return true
		})
		if err != nil || recvErr != nil {
			// EAGAIN: nothing more is waiting.
			break
		}

		n.record(buf[:got])
	}

	return n.msgs
}

// waitMsg waits for an assignment for which match holds, and returns it.
func (n *notifySocket) waitMsg(t *testing.T, what string, match func(string) bool) string {
	t.Helper()

	deadline := time.Now().Add(stepTimeout)
	buf := make([]byte, 4096)
	for seen := 0; ; {
		for _, m := range n.msgs[seen:] {
			if match(m) {
				return m
			}
		}
		seen = len(n.msgs)

		_ = n.conn.SetReadDeadline(deadline)
		got, err := n.conn.Read(buf)
		if err != nil {
			t.Fatalf("notify %s: got %v after %q, want it", what, err, n.msgs)
		}
		n.record(buf[:got])
	}
}

// client is one chat connection.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *bufio.Reader
	nick string // from the greeting
}

// dial connects to chatd at addr and reads its greeting.
func dial(t *testing.T, addr string) *client {
	t.Helper()

	c := dialRaw(t, addr, nil)
	c.greeted()
	return c
}

// dialRaw connects to chatd at addr from the local address from (nil for
// any) without reading anything.
func dialRaw(t *testing.T, addr string, from net.Addr) *client {
	t.Helper()

	d := net.Dialer{Timeout: stepTimeout, LocalAddr: from}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: got %v, want a connection", addr, err)
	}
	t.Cleanup(func() { conn.Close() })

	return &client{t: t, conn: conn, r: newReader(conn)}
}

// newReader returns a buffered reader for a chat connection.
func newReader(r io.Reader) *bufio.Reader {
	return bufio.NewReaderSize(r, 64<<10)
}

// greeted reads the welcome line and learns the client's nick from it.
func (c *client) greeted() {
	c.t.Helper()

	line := c.readLine()
	_, rest, ok := strings.Cut(line, "*** welcome to chatd, you are ")
	nick, _, _ := strings.Cut(rest, ";")
	if !ok || nick == "" {
		c.t.Fatalf("greeting: got %q, want *** welcome to chatd, you are NICK; ...", line)
	}
	c.nick = nick
}

// send writes s as it is.
func (c *client) send(s string) {
	c.t.Helper()

	_ = c.conn.SetWriteDeadline(time.Now().Add(stepTimeout))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("%s write: got %v, want it sent", c.nick, err)
	}
}

// say sends s as one line.
func (c *client) say(s string) {
	c.t.Helper()
	c.send(s + "\r\n")
}

// readLine reads one line, which must end in CRLF and be text only, and
// returns it without its line end.
func (c *client) readLine() string {
	c.t.Helper()

	_ = c.conn.SetReadDeadline(time.Now().Add(stepTimeout))
	line, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("%s read: got %v after %q, want a line", c.nick, err, line)
	}

	text, ok := strings.CutSuffix(line, "\r\n")
	if !ok {
		c.t.Fatalf("%s read: got %q, want a line ending in CRLF", c.nick, line)
	}
	if bad := unsafeText(text); bad != "" {
		c.t.Fatalf("%s read: got %q, which has %s, want text only", c.nick, text, bad)
	}

	return text
}

// expect reads lines until one equals want, and fails if it does not come.
// It returns the lines read before it.
func (c *client) expect(want string) []string {
	c.t.Helper()

	var before []string
	for {
		line := c.readLine()
		if line == want {
			return before
		}
		before = append(before, line)
	}
}

// expectNext reads one line and fails unless it equals want.
func (c *client) expectNext(want string) {
	c.t.Helper()

	if got := c.readLine(); got != want {
		c.t.Fatalf("%s: got %q, want %q", c.nick, got, want)
	}
}

// expectEOF fails unless the connection ends (EOF or reset) with nothing
// more to read, and then closes it.
func (c *client) expectEOF() {
	c.t.Helper()

	_ = c.conn.SetReadDeadline(time.Now().Add(stepTimeout))
	rest, err := io.ReadAll(c.r)
	switch {
	case err != nil && !errors.Is(err, unix.ECONNRESET):
		c.t.Fatalf("%s: got %v after %q, want EOF", c.nick, err, rest)
	case len(rest) > 0:
		c.t.Fatalf("%s: got %q, want EOF", c.nick, rest)
	}

	c.conn.Close()
}

// unsafeText names what in s must not reach a terminal, or returns "".
func unsafeText(s string) string {
	for i, r := range s {
		switch {
		case r == 0xFFFD && !strings.HasPrefix(s[i:], "\uFFFD"):
			return "invalid UTF-8"
		case r < 0x20:
			return fmt.Sprintf("control character %U", r)
		case r == 0x7F:
			return "DEL"
		case r >= 0x80 && r < 0xA0:
			return fmt.Sprintf("C1 control %U", r)
		}
	}

	return ""
}

// setLinger0 makes closing c reset the connection (RST) instead of
// ending it (FIN).
func setLinger0(t *testing.T, c net.Conn) {
	t.Helper()

	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatalf("SO_LINGER: got %v, want it set", err)
	}
}

// waitConsumed waits until chatd has read everything c sent, which is when
// the kernel holds nothing unread on chatd's side of the connection. It
// makes a following write arrive in a separate read.
func waitConsumed(t *testing.T, c net.Conn) {
	t.Helper()

	local := c.LocalAddr().(*net.TCPAddr)
	remote := c.RemoteAddr().(*net.TCPAddr)
	waitFor(t, "chatd reading "+local.String(), func() bool {
		rx, ok := rxQueue(t, remote.Port, local.Port)
		return ok && rx == 0
	})
}

// rxQueue returns the bytes waiting to be read on the IPv4 TCP socket with
// local port lport and remote port rport, from /proc/net/tcp.
func rxQueue(t *testing.T, lport, rport int) (int, bool) {
	t.Helper()

	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatalf("read /proc/net/tcp: got %v, want it", err)
	}

	want := fmt.Sprintf(":%04X", lport)
	peer := fmt.Sprintf(":%04X", rport)
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasSuffix(f[1], want) || !strings.HasSuffix(f[2], peer) {
			continue
		}

		_, rx, _ := strings.Cut(f[4], ":")
		n, err := strconv.ParseInt(rx, 16, 64)
		return int(n), err == nil
	}

	return 0, false
}

// fdCount returns how many fds process pid has open.
func fdCount(t *testing.T, pid int) int {
	t.Helper()

	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("read fds of %d: got %v, want a list", pid, err)
	}

	return len(fds)
}

// socketCount returns how many of process pid's fds are sockets: its
// listeners and client connections, without the fds the Go runtime opens
// for itself along the way.
func socketCount(t *testing.T, pid int) int {
	t.Helper()

	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read fds of %d: got %v, want a list", pid, err)
	}

	n := 0
	for _, fd := range fds {
		// An fd closed since ReadDir is simply not counted.
		if link, err := os.Readlink(filepath.Join(dir, fd.Name())); err == nil &&
			strings.HasPrefix(link, "socket:") {
			n++
		}
	}

	return n
}

// rssKiB returns the resident set size of process pid in KiB.
func rssKiB(t *testing.T, pid int) int {
	t.Helper()

	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read status of %d: got %v, want it", pid, err)
	}

	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			if err == nil {
				return kb
			}
		}
	}

	t.Fatalf("VmRSS of %d: got none in %q, want it", pid, data)
	return 0
}

// cpuTicks returns the user and system time process pid has used, in clock
// ticks, from /proc/PID/stat.
func cpuTicks(t *testing.T, pid int) int {
	t.Helper()

	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("read stat of %d: got %v, want it", pid, err)
	}

	// The command name, in parentheses, may hold spaces; count fields
	// from after it. utime and stime are fields 14 and 15.
	_, rest, _ := bytes.Cut(data, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		t.Fatalf("stat of %d: got %q, want at least 15 fields", pid, data)
	}

	utime, err1 := strconv.Atoi(f[11])
	stime, err2 := strconv.Atoi(f[12])
	if err1 != nil || err2 != nil {
		t.Fatalf("stat of %d: got %q, want numeric utime and stime", pid, data)
	}

	return utime + stime
}
