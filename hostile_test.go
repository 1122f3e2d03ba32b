package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Telnet command bytes, for writing hostile input.
const (
	iac  = "\xff"
	will = "\xfb"
	wont = "\xfc"
	do   = "\xfd"
	dont = "\xfe"
	sb   = "\xfa"
	se   = "\xf0"
)

// TestTelnetCommands checks that telnet commands never reach another
// client, even when they arrive one byte per read, and that chatd refuses
// every option: DO with WONT, WILL with DONT, and WONT and DONT with
// nothing.
func TestTelnetCommands(t *testing.T) {
	tests := []struct {
		name  string
		input string // sent one byte at a time, then CRLF
		want  string // text of the line the other client sees
		reply string // what the sender gets back, in order
	}{
		{"will", "he" + iac + will + "\x1f" + "llo", "hello", iac + dont + "\x1f"},
		{"do", "hi" + iac + do + "\x01", "hi", iac + wont + "\x01"},
		{"wont and dont", iac + wont + "\x01" + iac + dont + "\x03" + "quiet", "quiet", ""},
		{"subnegotiation", "a" + iac + sb + "\x18\x00xterm" + iac + se + "b", "ab", ""},
		{"escaped iac in subnegotiation", iac + sb + "\x18" + iac + iac + "\x01" + iac + se + "x",
			"x", ""},
		{"two-byte commands", "a" + iac + "\xf4" + "b" + iac + "\xf6" + "c" + iac + "\xf1" +
			"d" + iac + "\xf3" + "e" + iac + "\xf9", "abcde", ""},
		{"escaped iac", "x" + iac + iac + "y", "x\uFFFDy", ""},
		{"client opening",
			iac + do + "\x03" + iac + will + "\x18" + iac + will + "\x1f" + iac + will + "\x27" +
				iac + do + "\x01" + "text",
			"text",
			iac + wont + "\x03" + iac + dont + "\x18" + iac + dont + "\x1f" + iac + dont + "\x27" +
				iac + wont + "\x01"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startActivated(t, []string{"--rate", "0"})
			from, to := dial(t, addr), dial(t, addr)
			from.expectNext("*** " + to.nick + " joined")

			in := tt.input + "\r\n"
			for i := range len(in) {
				from.send(in[i : i+1])
				waitConsumed(t, from.conn)
			}
			to.expectNext("<" + from.nick + "> " + tt.want)

			// Whatever chatd sent the sender before its answer to /who is
			// its reply to the telnet commands.
			from.say("/who")
			_ = from.conn.SetReadDeadline(time.Now().Add(stepTimeout))
			got, err := from.r.ReadString('\n')
			if err != nil {
				t.Fatalf("%s read: got %v after %q, want a line", from.nick, err, got)
			}

			reply, ok := strings.CutSuffix(got, "*** 2 online: "+from.nick+", "+to.nick+"\r\n")
			if !ok || reply != tt.reply {
				t.Fatalf("reply: got %q, want %q then the /who line", got, tt.reply)
			}
		})
	}
}

// TestHostileText checks that what one client sends reaches the others as
// text only: no control characters or escape sequences, no line that seems
// to come from someone else or from the server, invalid UTF-8 replaced,
// and a character split across reads kept whole.
func TestHostileText(t *testing.T) {
	tests := []struct {
		name  string
		parts []string // written one after another, each read by chatd before the next
		want  []string // text of the lines the other client sees, without "<nick> "
	}{
		{"clear screen", []string{"a\x1b[2Jb\r\n"}, []string{"ab"}},
		{"colours", []string{"\x1b[1;31mred\x1b[0m\r\n"}, []string{"red"}},
		{"title with BEL", []string{"\x1b]0;owned\x07hi\r\n"}, []string{"hi"}},
		{"title with ST", []string{"\x1b]0;owned\x1b\\hi\r\n"}, []string{"hi"}},
		{"reset", []string{"\x1bcafter\r\n"}, []string{"after"}},
		{"C1 CSI", []string{"a\u009b2Jb\r\n"}, []string{"ab"}},
		{"C1 controls", []string{"a\u0085b\u008dc\u009cd\r\n"}, []string{"abcd"}},
		{"C0 controls", []string{"a\x00b\x07c\x0bd\x0ce\x1ff\r\n"}, []string{"abcdef"}},
		{"tab", []string{"a\tb\r\n"}, []string{"a b"}},
		{"DEL", []string{"abc\x7fd\r\n"}, []string{"abd"}},
		{"backspace", []string{"abc\bd\r\n"}, []string{"abd"}},
		{"bidi override", []string{"abc\u202edcba\r\n"}, []string{"abcdcba"}},
		{"CR then fake nick", []string{"\r<bob> fake\r\n"}, []string{"<bob> fake"}},
		{"CR inside", []string{"hi\r*** fake\r\n"}, []string{"hi", "*** fake"}},
		{"LF then fake notice", []string{"x\n*** fake\r\n"}, []string{"x", "*** fake"}},
		{"invalid UTF-8", []string{"a\xfeb\xc3(\r\n"}, []string{"a\uFFFDb\uFFFD("}},
		{"overlong encoding", []string{"\xc0\xaf.\r\n"}, []string{"\uFFFD\uFFFD."}},
		{"split character", []string{"caf\xc3", "\xa9 \xe2\x82", "\xac\r\n"}, []string{"café €"}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := startActivated(t, []string{"--rate", "0"})
			from, to := dial(t, addr), dial(t, addr)
			from.expectNext("*** " + to.nick + " joined")

			for _, p := range tt.parts {
				from.send(p)
				waitConsumed(t, from.conn)
			}
			from.say("end")

			got := to.expect("<" + from.nick + "> end")
			want := make([]string, len(tt.want))
			for i, w := range tt.want {
				want[i] = "<" + from.nick + "> " + w
			}

			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Fatalf("lines seen: got %q, want %q", got, want)
			}
		})
	}
}

// TestFlood checks that a client streaming megabytes of lines is held to
// its --rate by not being read (the bytes wait in the kernel, not in
// chatd), loses none of them, and slows no one else down, while chatd's
// memory stays bounded.
func TestFlood(t *testing.T) {
	const (
		lines   = 3000
		rate    = 2000
		burst   = 20
		lineLen = 1000
		maxRSS  = 64 << 10 // KiB
	)

	d, addr := startActivated(t, []string{"--rate", strconv.Itoa(rate),
		"--burst", strconv.Itoa(burst), "--sendq", strconv.Itoa(4 << 20)})
	reader := dial(t, addr)
	flooder := dial(t, addr)
	talker := dial(t, addr)
	reader.expectNext("*** " + flooder.nick + " joined")
	reader.expectNext("*** " + talker.nick + " joined")

	// The talker reads what comes, so that it is no slow reader.
	go func() { _, _ = io.Copy(io.Discard, talker.conn) }()

	// The flooder writes everything at once and never reads.
	var flood bytes.Buffer
	pad := strings.Repeat("x", lineLen-len("flood 00000 \r\n"))
	for i := range lines {
		fmt.Fprintf(&flood, "flood %05d %s\r\n", i, pad)
	}
	wrote := make(chan error, 1)
	go func() {
		_ = flooder.conn.SetWriteDeadline(time.Now().Add(time.Minute))
		_, err := flooder.conn.Write(flood.Bytes())
		wrote <- err
	}()

	// The reader checks the flood arrives whole and in order, and passes on
	// the talker's probes as they arrive.
	type seen struct {
		flood int       // flood lines so far
		at    time.Time // when the last one came
	}
	progress := make(chan seen, lines)
	probes := make(chan string, 16)
	failed := make(chan error, 1)
	go func() {
		err := readFlood(reader, flooder.nick, talker.nick, lines, func(n int) {
			progress <- seen{n, time.Now()}
		}, probes)
		if err != nil {
			failed <- err
		}
	}()

	// Once the flood runs, the talker's lines must still come promptly.
	var first, last seen
	maxKiB := rssKiB(t, d.pid)
	for first.flood < 100 {
		first = nextProgress(t, progress, failed)
	}

	rx, _ := rxQueue(t, portOf(reader.conn.RemoteAddr()), portOf(flooder.conn.LocalAddr()))
	t.Logf("bytes of the flood waiting unread in the kernel: %d", rx)
	if rx == 0 {
		t.Errorf("flooder's unread bytes: got 0, want chatd to leave them in the kernel")
	}

	for i := range 5 {
		sent := time.Now()
		talker.say("probe " + strconv.Itoa(i))
		select {
		case p := <-probes:
			if want := "probe " + strconv.Itoa(i); p != want {
				t.Fatalf("probe: got %q, want %q", p, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("probe %d: got nothing after 2s, want it during the flood", i)
		}
		t.Logf("probe %d reached the reader in %v during the flood", i, time.Since(sent))
		maxKiB = max(maxKiB, rssKiB(t, d.pid))
	}

	for last.flood < lines {
		last = nextProgress(t, progress, failed)
		if last.flood%200 == 0 {
			maxKiB = max(maxKiB, rssKiB(t, d.pid))
		}
	}

	if first.flood >= lines-100 {
		t.Errorf("flood: ended before the probes, want them sent during it")
	}

	// The token bucket lets burst lines through at once and then rate a
	// second. The reader's own delays can only shorten the span it
	// measures, so the floor is half the paced time: without the limit the
	// flood would take a few milliseconds.
	took := last.at.Sub(first.at)
	floor := time.Duration(float64(lines-first.flood-burst) / rate * 0.5 * float64(time.Second))
	t.Logf("flood of %d lines of %d bytes: %v from line %d to the last; chatd RSS peak %d KiB",
		lines, lineLen, took, first.flood, maxKiB)
	if took < floor {
		t.Errorf("flood duration: got %v, want at least %v at --rate %d", took, floor, rate)
	}
	if maxKiB > maxRSS {
		t.Errorf("chatd RSS during the flood: got %d KiB, want under %d KiB", maxKiB, maxRSS)
	}

	select {
	case err := <-wrote:
		if err != nil {
			t.Fatalf("flooder write: got %v, want all of it written", err)
		}
	case <-time.After(stepTimeout):
		t.Fatalf("flooder write: got no end after %v, want it written", stepTimeout)
	}
}

// readFlood reads lines at c until it has seen n flood lines from flooder,
// checking their order and reporting the count to seen, and sends the text
// of the talker's lines to probes.
func readFlood(c *client, flooder, talker string, n int, seen func(int),
	probes chan<- string) error {
	_ = c.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for count := 0; count < n; {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return fmt.Errorf("reader: got %v after %d flood lines, want %d", err, count, n)
		}

		if text, ok := strings.CutPrefix(line, "<"+talker+"> "); ok {
			probes <- strings.TrimSuffix(text, "\r\n")
			continue
		}

		want := fmt.Sprintf("<%s> flood %05d ", flooder, count)
		if !strings.HasPrefix(line, want) {
			return fmt.Errorf("reader: got %.40q, want a line starting %q", line, want)
		}
		count++
		seen(count)
	}

	return nil
}

// nextProgress returns the next report of the flood's reader, failing if
// the reader fails or stalls.
func nextProgress[T any](t *testing.T, progress <-chan T, failed <-chan error) T {
	t.Helper()

	select {
	case p := <-progress:
		return p
	case err := <-failed:
		t.Fatal(err)
	case <-time.After(stepTimeout):
		t.Fatalf("flood: got no line for %v, want lines", stepTimeout)
	}

	var zero T
	return zero
}

// portOf returns the port of a TCP address.
func portOf(a net.Addr) int {
	return a.(*net.TCPAddr).Port
}

// TestPaste checks that with the default flags a client may paste a dozen
// lines at once and every one is delivered at once, within its burst.
func TestPaste(t *testing.T) {
	_, addr := startActivated(t, nil)
	from, to := dial(t, addr), dial(t, addr)
	from.expectNext("*** " + to.nick + " joined")

	var paste strings.Builder
	for i := range 12 {
		fmt.Fprintf(&paste, "pasted line %d\n", i)
	}

	start := time.Now()
	from.send(paste.String())
	for i := range 12 {
		to.expectNext(fmt.Sprintf("<%s> pasted line %d", from.nick, i))
	}

	// At the default 5 lines a second, without the burst the last line
	// would come 2.2s after the first.
	took := time.Since(start)
	t.Logf("12 pasted lines delivered in %v", took)
	if took > time.Second {
		t.Errorf("paste: got the 12 lines in %v, want them within 1s", took)
	}
}

// TestConnectionLimits checks that --max-clients and --max-per-ip refuse
// the connection over the limit with one *** line, close it, log it, and
// admit others again once there is room.
func TestConnectionLimits(t *testing.T) {
	tests := []struct {
		name  string
		flag  string
		line  string // what the refused client reads
		log   string // the reason chatd logs
		other string // a local address that is not over the limit; "" for none
	}{
		{"max clients", "--max-clients", "*** server full, try again later", "too many clients", ""},
		{"max per ip", "--max-per-ip", "*** too many connections from your address",
			"too many from address", "127.0.0.2:0"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, addr := startActivated(t, []string{tt.flag, "2"})
			a, b := dial(t, addr), dial(t, addr)
			a.expectNext("*** " + b.nick + " joined")

			over := dialRaw(t, addr, nil)
			over.expectNext(tt.line)
			over.expectEOF()
			d.waitLog(t, 1, "refused", tt.log)

			if tt.other != "" {
				from, _ := net.ResolveTCPAddr("tcp4", tt.other)
				c := dialRaw(t, addr, from)
				c.greeted()
			}

			// Once one leaves and chatd has closed its connection, there is
			// room again.
			fds := fdCount(t, d.pid)
			b.say("/quit")
			b.expect("*** bye")
			b.expectEOF()
			waitFor(t, fmt.Sprintf("chatd's fds down to %d", fds-1), func() bool {
				return fdCount(t, d.pid) == fds-1
			})
			dial(t, addr)
		})
	}
}

// TestConnectionChurn checks that thousands of connections that come and go
// (closed, reset, or cut off mid-line) leave no fd behind in chatd and no
// growing memory.
func TestConnectionChurn(t *testing.T) {
	const warmup, cycles = 500, 2500

	d, addr := startActivated(t, []string{"--max-per-ip", "64"})
	socks := socketCount(t, d.pid)
	dial(t, addr).conn.Close()
	d.waitLog(t, 1, "disconnected")
	waitFor(t, fmt.Sprintf("chatd's sockets back to %d after one client", socks), func() bool {
		return socketCount(t, d.pid) == socks
	})
	fds := fdCount(t, d.pid)

	deadline := time.Now().Add(time.Minute)
	churn := func(n int) {
		for i := range n {
			if time.Now().After(deadline) {
				t.Fatalf("churn: got %d cycles by the deadline, want %d", i, n)
			}
			cycle(t, addr, i%3)
		}
	}

	churn(warmup)
	before := rssKiB(t, d.pid)
	start := time.Now()
	churn(cycles)
	took := time.Since(start)

	var now int
	waitFor(t, fmt.Sprintf("chatd's fds back to %d", fds), func() bool {
		now = fdCount(t, d.pid)
		return now == fds
	})

	after := rssKiB(t, d.pid)
	t.Logf("%d connect/disconnect cycles in %v; fds %d before, %d after; "+
		"RSS %d KiB before, %d KiB after",
		cycles, took, fds, now, before, after)
	if after-before > 8<<10 {
		t.Errorf("chatd RSS growth over %d cycles: got %d KiB, want under 8 MiB", cycles,
			after-before)
	}
}

// cycle connects to addr, reads the greeting and leaves: with a FIN (way
// 0), a reset (1), or in the middle of a line (2).
func cycle(t *testing.T, addr string, way int) {
	t.Helper()

	conn, err := net.DialTimeout("tcp4", addr, stepTimeout)
	if err != nil {
		t.Fatalf("dial %s: got %v, want a connection", addr, err)
	}
	defer conn.Close()

	_ = conn.SetDeadline(time.Now().Add(stepTimeout))
	buf := make([]byte, 256)
	if n, err := conn.Read(buf); err != nil || !bytes.HasPrefix(buf[:n], []byte("*** welcome")) {
		t.Fatalf("greeting: got %q, %v, want *** welcome", buf[:n], err)
	}

	switch way {
	case 1:
		setLinger0(t, conn)
	case 2:
		_, _ = conn.Write([]byte("half a li"))
	}
}

// TestSlowReader checks that a client that never reads is disconnected
// once its queue is full, while the others chat on and lose nothing.
func TestSlowReader(t *testing.T) {
	d, addr := startActivated(t, []string{"--rate", "0", "--max-line", "1024", "--sendq", "8192"})

	// A small receive buffer makes the slow reader's window close soon.
	dialer := net.Dialer{Timeout: stepTimeout, Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		_ = c.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
		})
		return err
	}}
	conn, err := dialer.Dial("tcp4", addr)
	if err != nil {
		t.Fatalf("dial: got %v, want a connection", err)
	}
	t.Cleanup(func() { conn.Close() })
	slow := &client{t: t, conn: conn, r: newReader(conn)}
	slow.greeted()

	talker, listener := dial(t, addr), dial(t, addr)
	talker.expectNext("*** " + listener.nick + " joined")

	// The talker talks until the slow reader is gone.
	stop := make(chan struct{})
	talked := make(chan error, 1)
	go func() {
		pad := strings.Repeat("y", 900)
		for i := 0; ; i++ {
			select {
			case <-stop:
				talked <- nil
				return
			default:
			}

			_ = talker.conn.SetWriteDeadline(time.Now().Add(stepTimeout))
			if _, err := fmt.Fprintf(talker.conn, "line %06d %s\r\n", i, pad); err != nil {
				talked <- err
				return
			}
		}
	}()

	// The listener sees every line, in order, and then the slow reader
	// leave.
	left := "*** " + slow.nick + " left"
	var got int
	for {
		line := listener.readLine()
		if line == left {
			break
		}

		want := fmt.Sprintf("<%s> line %06d ", talker.nick, got)
		if !strings.HasPrefix(line, want) {
			t.Fatalf("listener: got %.40q, want a line starting %q", line, want)
		}
		got++
	}
	close(stop)
	if err := <-talked; err != nil {
		t.Fatalf("talker: got %v, want it talking", err)
	}
	t.Logf("slow reader dropped after %d lines of 900 bytes", got)
	d.waitLog(t, 1, "send queue full", "nick="+slow.nick)

	// The rest of what the talker said still arrives, and so does more.
	talker.say("still here")
	for {
		line := listener.readLine()
		if line == "<"+talker.nick+"> still here" {
			break
		}

		want := fmt.Sprintf("<%s> line %06d ", talker.nick, got)
		if !strings.HasPrefix(line, want) {
			t.Fatalf("listener: got %.40q, want a line starting %q", line, want)
		}
		got++
	}

	// The slow reader's connection is closed: what it reads now ends.
	_ = slow.conn.SetReadDeadline(time.Now().Add(stepTimeout))
	if _, err := io.Copy(io.Discard, slow.conn); err != nil && !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("slow reader: got %v, want its connection closed", err)
	}
}

// TestIdleCPU checks that chatd, idle with clients connected and others
// gone abruptly (reset, half-closed), uses no CPU: it is not spinning on a
// dead socket. This is the one test that measures over a fixed window.
func TestIdleCPU(t *testing.T) {
	const window, maxTicks = time.Second, 3

	d, addr := startActivated(t, nil)
	d.waitLog(t, 1, "serving")
	fds := fdCount(t, d.pid)

	var cs []*client
	for range 5 {
		cs = append(cs, dial(t, addr))
	}

	setLinger0(t, cs[0].conn)
	cs[0].conn.Close()
	setLinger0(t, cs[1].conn)
	cs[1].conn.Close()
	if err := cs[2].conn.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("half-close: got %v, want it done", err)
	}

	d.waitLog(t, 3, "disconnected")
	waitFor(t, fmt.Sprintf("chatd's fds at %d", fds+2), func() bool {
		return fdCount(t, d.pid) == fds+2
	})

	before := cpuTicks(t, d.pid)
	time.Sleep(window)
	used := cpuTicks(t, d.pid) - before

	t.Logf("chatd used %d clock ticks of CPU in %v idle with 2 clients", used, window)
	if used > maxTicks {
		t.Errorf("idle CPU over %v: got %d ticks, want at most %d", window, used, maxTicks)
	}
}

// TestTelnetClient drives a real telnet client through tmux, in line mode
// and in character mode, with Ctrl-C and terminal keys, and checks that
// another client sees only the text typed.
func TestTelnetClient(t *testing.T) {
	needTools(t, "telnet", "tmux")

	_, addr := startActivated(t, nil)
	watcher := dial(t, addr)
	host, port, _ := net.SplitHostPort(addr)
	tm := startTmux(t, "telnet", host, port)

	joined := watcher.readLine()
	nick, ok := strings.CutSuffix(strings.TrimPrefix(joined, "*** "), " joined")
	if !ok {
		t.Fatalf("watcher: got %q, want *** NICK joined", joined)
	}
	from := "<" + nick + "> "
	tm.waitPane("Escape character is")

	// Line mode, as telnet starts with a server that offers nothing.
	tm.keys("-l", "hello from telnet")
	tm.keys("Enter")
	watcher.expectNext(from + "hello from telnet")

	tm.keys("-l", "c")
	tm.keys("Up", "Left")
	tm.keys("-l", "d")
	tm.keys("Enter")
	watcher.expectNext(from + "cd")

	// Ctrl-C makes telnet send IAC IP and flush the line typed so far;
	// whatever of it arrives must be text from this client.
	tm.keys("-l", "discarded")
	tm.keys("C-c")
	tm.keys("-l", "after ctrl-c")
	tm.keys("Enter")
	for {
		line := watcher.readLine()
		if !strings.HasPrefix(line, from) {
			t.Fatalf("watcher: got %q, want lines starting %q", line, from)
		}
		if strings.HasSuffix(line, "after ctrl-c") {
			break
		}
	}

	// Character mode: every key goes out as it is typed.
	tm.keys("C-]")
	tm.waitPane("telnet>")
	tm.keys("-l", "mode character")
	tm.keys("Enter")
	tm.waitTTY(false)

	tm.keys("-l", "char mode")
	tm.keys("Enter")
	watcher.expectNext(from + "char mode")

	tm.keys("-l", "x")
	tm.keys("C-c")
	tm.keys("-l", "y")
	tm.keys("Escape")
	tm.keys("-l", "[2Jz")
	tm.keys("Up")
	tm.keys("Enter")

	// telnet may send the x, or treat Ctrl-C as interrupting it.
	if got := watcher.readLine(); got != from+"xyz" && got != from+"yz" {
		t.Fatalf("watcher: got %q, want %q or %q", got, from+"xyz", from+"yz")
	}

	tm.keys("-l", "/quit")
	tm.keys("Enter")
	watcher.expectNext("*** " + nick + " left")
}

// needTools skips the test if a command it needs is missing, or fails it
// under CI (CI=true), where .ci/run installs them.
func needTools(t *testing.T, names ...string) {
	t.Helper()

	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s: got %v, want it installed under CI", name, err)
			}
			t.Skipf("%s not installed: %v", name, err)
		}
	}
}

// tmux is a tmux server of the test's own with one pane running a command.
type tmux struct {
	t    *testing.T
	sock string // the server's socket, private to the test
}

// startTmux runs command in a new tmux server's only pane, and kills the
// server when the test ends.
func startTmux(t *testing.T, command ...string) *tmux {
	t.Helper()

	dir, err := os.MkdirTemp("", "chatd-tmux-")
	if err != nil {
		t.Fatalf("temp dir: got %v, want one", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	tm := &tmux{t: t, sock: filepath.Join(dir, "sock")}
	tm.run(append([]string{"new-session", "-d", "-s", "chat", "-x", "120", "-y", "40"},
		command...)...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("telnet's screen:\n%s", tm.pane())
		}
		_ = exec.Command("tmux", "-S", tm.sock, "kill-server").Run()
	})

	return tm
}

// run runs a tmux command against the test's server.
func (tm *tmux) run(args ...string) string {
	tm.t.Helper()

	cmd := exec.Command("tmux", append([]string{"-S", tm.sock, "-f", "/dev/null"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %s: got %v (%s), want it done", strings.Join(args, " "), err, out)
	}

	return string(out)
}

// keys types keys into the pane, as tmux send-keys takes them.
func (tm *tmux) keys(keys ...string) {
	tm.t.Helper()
	tm.run(append([]string{"send-keys", "-t", "chat"}, keys...)...)
}

// pane returns what the pane shows.
func (tm *tmux) pane() string {
	out, _ := exec.Command("tmux", "-S", tm.sock, "capture-pane", "-p", "-t", "chat").Output()
	return string(out)
}

// waitPane waits until the pane shows s.
func (tm *tmux) waitPane(s string) {
	tm.t.Helper()
	waitFor(tm.t, "telnet showing "+s, func() bool { return strings.Contains(tm.pane(), s) })
}

// waitTTY waits until the pane's terminal is in canonical (line) mode, or
// out of it: telnet switches it when its own mode changes.
func (tm *tmux) waitTTY(canonical bool) {
	tm.t.Helper()

	tty := strings.TrimSpace(tm.run("display-message", "-p", "-t", "chat", "#{pane_tty}"))
	want := "-icanon"
	if canonical {
		want = "icanon"
	}

	waitFor(tm.t, tty+" in mode "+want, func() bool {
		out, err := exec.Command("stty", "-F", tty, "-a").Output()
		return err == nil && slices.Contains(strings.Fields(string(out)), want)
	})
}
