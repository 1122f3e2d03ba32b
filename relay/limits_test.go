package relay_test

import (
	"fmt"
	"io"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/chatd/chatd/relay"
)

func TestMaxClients(t *testing.T) {
	_, addr := start(t, relay.Config{MaxClients: 2})
	a := dial(t, addr)
	dial(t, addr)
	a.expect("*** guest2 joined")

	c := dialRaw(t, addr)
	c.expect("*** server full, try again later")
	c.expectEOF()
	a.silent()

	// A place that frees up can be taken again.
	a.c.Close()
	d := dialUntilWelcome(t, addr)
	d.silent()
}

func TestMaxPerIP(t *testing.T) {
	_, addr := start(t, relay.Config{MaxPerIP: 1})
	a := dial(t, addr)

	c := dialRaw(t, addr)
	c.expect("*** too many connections from your address")
	c.expectEOF()
	a.silent()
}

// dialUntilWelcome dials addr until the server lets a client in, for when
// a place is being freed.
func dialUntilWelcome(t *testing.T, addr string) *conn {
	t.Helper()

	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		c := dialRaw(t, addr)
		if l := c.line(); strings.HasPrefix(l, "*** welcome") {
			return c
		}
		c.c.Close()
	}

	t.Fatalf("dial: got no place in %v, want one freed", wait)
	return nil
}

func TestTelnetNegotiation(t *testing.T) {
	_, _, cs := room(t, relay.Config{}, "alice", "bob")
	alice, bob := cs["alice"], cs["bob"]

	// DO ECHO, WILL NAWS with its subnegotiation, IAC IP, AYT, one byte at
	// a time around a line.
	in := "\xff\xfd\x01\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0he\xff\xf4llo\xff\xf6\r\n"
	for i := range len(in) {
		alice.send(in[i : i+1])
	}
	bob.expect("<alice> hello")

	want := "\xff\xfc\x01\xff\xfe\x1f"
	alice.c.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(alice.r, got); err != nil {
		t.Fatalf("read the refusals: %v", err)
	}
	if string(got) != want {
		t.Fatalf("refusals: got %q, want %q", got, want)
	}
	alice.silent()
}

func TestHostileText(t *testing.T) {
	tests := []struct {
		name, send, bob string
	}{
		{"clear screen", "a\x1b[2J\x1b[Hb\r\n", "<alice> ab"},
		{"title", "a\x1b]0;owned\x07b\r\n", "<alice> ab"},
		{"C1 CSI", "a\u009b2Jb\r\n", "<alice> ab"},
		{"reset", "a\x1bcb\r\n", "<alice> ab"},
		{"bell and backspace", "ab\x07\x08c\r\n", "<alice> ac"},
		{"DEL", "ab\x7fc\r\n", "<alice> ac"},
		{"fake server line", "hi\r*** bob is now root\r\n", "<alice> hi"},
		{"fake line after LF", "hi\n<bob> I owe alice money\r\n", "<alice> hi"},
		{"invalid UTF-8", "a\xc3\x28\xa0b\r\n", "<alice> a\uFFFD(\uFFFDb"},
		{"bidi override", "a\u202etxt.exe\r\n", "<alice> atxt.exe"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, cs := room(t, relay.Config{}, "alice", "bob")
			cs["alice"].send(tt.send)
			cs["bob"].expect(tt.bob)

			// Whatever else arrives is a line of alice's, not another's.
			cs["alice"].sync()
			cs["bob"].send("/who\r\n")
			for {
				l := cs["bob"].line()
				if strings.HasPrefix(l, "*** 2 online") {
					break
				}
				if !strings.HasPrefix(l, "<alice> ") {
					t.Fatalf("bob read: got %q, want a line of alice's", l)
				}
			}
		})
	}
}

func TestSplitCharacter(t *testing.T) {
	_, _, cs := room(t, relay.Config{}, "alice", "bob")
	cs["alice"].send("caf\xc3")
	cs["bob"].sync()
	cs["alice"].send("\xa9 \xf0\x9f")
	cs["bob"].sync()
	cs["alice"].send("\x98\x80\r\n")
	cs["bob"].expect("<alice> café 😀")
}

func TestRateLimit(t *testing.T) {
	const lines = 40

	_, _, cs := room(t, relay.Config{Rate: 50, Burst: 5}, "flood", "bob", "carol")
	flood, bob, carol := cs["flood"], cs["bob"], cs["carol"]

	// The flood goes out at once; the server takes it at its own pace.
	start := time.Now()
	flood.send(numbered(lines, "%d\r\n"))

	// Others are not held up meanwhile: bob's line reaches carol while the
	// flood is still coming in.
	bob.send("hi carol\r\n")
	for seen := 0; ; seen++ {
		l := carol.line()
		if l == "<bob> hi carol" {
			t.Logf("bob reached carol in %v, after %d flood lines", time.Since(start), seen)
			if seen >= lines {
				t.Fatalf("carol: got bob's line after the whole flood, want it during the flood")
			}
			break
		}
	}

	// Nothing the flooder typed is lost, and it came in at the rate.
	for i := range lines {
		bob.expect(fmt.Sprintf("<flood> %d", i))
	}

	// 5 lines of burst, then 35 at 50 a second: at least 0.7s.
	if took := time.Since(start); took < 600*time.Millisecond {
		t.Errorf("flood of %d lines at 50/s with a burst of 5: got %v, want at least 600ms", lines, took)
	}
}

func TestPasteIsNotSlowed(t *testing.T) {
	// At this rate, only the burst lets more than one line through in the
	// time the test waits.
	_, _, cs := room(t, relay.Config{Rate: 0.001, Burst: 20}, "alice", "bob")
	cs["alice"].send(numbered(12, "line %d\r\n"))

	for i := range 12 {
		cs["bob"].expect(fmt.Sprintf("<alice> line %d", i))
	}
}

func TestCheck(t *testing.T) {
	good := relay.Config{MaxLine: 2048, SendQ: 65536, MaxClients: 1000, MaxPerIP: 16,
		Rate: 5, Burst: 20}
	if err := good.Check(); err != nil {
		t.Fatalf("Check() of the defaults: got %v, want nil", err)
	}

	tests := []struct {
		name  string
		edit  func(*relay.Config)
		wrong string // the flag the error names
	}{
		{"short line", func(c *relay.Config) { c.MaxLine = 15 }, "--max-line"},
		{"huge line", func(c *relay.Config) { c.MaxLine = 1 << 62; c.SendQ = 100 }, "--max-line"},
		{"sendq under four lines", func(c *relay.Config) { c.SendQ = 8000 }, "--sendq"},
		{"sendq under the floor", func(c *relay.Config) { c.MaxLine = 16; c.SendQ = 64 }, "--sendq"},
		{"clients below one", func(c *relay.Config) { c.MaxClients = -1 }, "--max-clients"},
		{"no clients per address", func(c *relay.Config) { c.MaxPerIP = -1 }, "--max-per-ip"},
		{"negative rate", func(c *relay.Config) { c.Rate = -1 }, "--rate"},
		{"NaN rate", func(c *relay.Config) { c.Rate = math.NaN() }, "--rate"},
		{"infinite rate", func(c *relay.Config) { c.Rate = math.Inf(1) }, "--rate"},
		{"vanishing rate", func(c *relay.Config) { c.Rate = 1e-300 }, "--rate"},
		{"burst below one", func(c *relay.Config) { c.Burst = -1 }, "--burst"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.edit(&cfg)
			err := cfg.Check()
			if err == nil || !strings.HasPrefix(err.Error(), tt.wrong+" ") {
				t.Fatalf("Check(): got %v, want an error about %s", err, tt.wrong)
			}

			if _, err := relay.New(cfg); err == nil {
				t.Fatalf("New(): got a server, want the error Check gives")
			}
		})
	}
}

// TestManySendersOneReader checks that a reader that keeps up stays, even
// when many senders together queue more than --sendq to it in one turn of
// the loop.
func TestManySendersOneReader(t *testing.T) {
	const senders, lines = 40, 20

	_, addr := start(t, relay.Config{MaxPerIP: senders + 1})
	reader := dial(t, addr)
	cs := make([]*conn, senders)
	for i := range cs {
		cs[i] = dial(t, addr)
	}
	reader.send("/who\r\n")
	reader.skipTo(fmt.Sprintf("*** %d online", senders+1))

	burst := strings.Repeat(strings.Repeat("z", 200)+"\r\n", lines)
	start := make(chan struct{})
	for _, c := range cs {
		go func() {
			<-start
			c.c.Write([]byte(burst))
		}()
	}
	close(start)

	for range senders * lines {
		if l := reader.line(); !strings.HasSuffix(l, "> "+strings.Repeat("z", 200)) {
			t.Fatalf("reader read: got %q, want a sender's line", l)
		}
	}
	reader.silent()
}

func TestNoticesArePaced(t *testing.T) {
	const churn = 200

	_, addr := start(t, relay.Config{MaxPerIP: churn + 1})
	watcher := dial(t, addr)
	for range churn {
		c := dialRaw(t, addr)
		c.expectPrefix("*** welcome")
		c.c.Close()
	}

	// Some notices come one by one, the rest as a count; together they
	// account for every join and every departure.
	shown, counted := 0, 0
	for shown+counted < 2*churn {
		l := watcher.line()
		var n int
		switch {
		case strings.HasSuffix(l, " joined"), strings.HasSuffix(l, " left"):
			shown++
		case strings.Contains(l, " more joined or left meanwhile"):
			if _, err := fmt.Sscanf(l, "*** %d more", &n); err != nil {
				t.Fatalf("watcher read: got %q (%v), want a count of notices", l, err)
			}
			counted += n
		default:
			t.Fatalf("watcher read: got %q, want a notice", l)
		}
	}

	if shown > churn {
		t.Errorf("notices shown one by one: got %d of %d, want them paced", shown, 2*churn)
	}
	watcher.silent()
}

// TestHeldLinesOutliveTheConnection checks that lines held back by the rate
// limit still go out after their sender has closed its connection, even
// when writing to that connection has reset it meanwhile.
func TestHeldLinesOutliveTheConnection(t *testing.T) {
	const lines = 30

	_, _, cs := room(t, relay.Config{Rate: 40, Burst: 5}, "paster", "talker", "watcher")
	paster, talker, watcher := cs["paster"], cs["talker"], cs["watcher"]

	paster.send(numbered(lines, "line %d\r\n"))
	watcher.expect("<paster> line 0")
	paster.c.Close()

	// Writing the talker's lines to the closed connection resets it.
	for range 3 {
		talker.send("hello\r\n")
	}

	got := 1
	for {
		l := watcher.line()
		switch {
		case l == "*** paster left":
			if got != lines {
				t.Fatalf("paster's lines: got %d, want %d", got, lines)
			}
			return
		case l == "<talker> hello":
		case l == fmt.Sprintf("<paster> line %d", got):
			got++
		default:
			t.Fatalf("watcher read: got %q, want line %d of paster's", l, got)
		}
	}
}

// TestResetBeforeWelcome checks that what a client sent before resetting
// its connection, even before chatd could greet it, still reaches the
// room, unfinished last line included.
func TestResetBeforeWelcome(t *testing.T) {
	_, addr, cs := room(t, relay.Config{}, "watcher")
	c := dialRaw(t, addr)
	c.send("first\r\nsecond\r\nunfinished")
	c.c.SetLinger(0)
	c.c.Close()

	w := cs["watcher"]
	w.expect("*** guest2 joined")
	w.expect("<guest2> first")
	w.expect("<guest2> second")
	w.expect("<guest2> unfinished")
	w.expect("*** guest2 left")
}

// TestDeafClientIsBounded checks that a client whose connection failed
// while its lines were held back keeps its place only for a while.
func TestDeafClientIsBounded(t *testing.T) {
	relay.SetDeafTime(t, 300*time.Millisecond)
	_, addr, cs := room(t, relay.Config{Rate: 0.001, Burst: 1}, "watcher")
	c := dial(t, addr)
	cs["watcher"].expect("*** guest2 joined")
	c.send("one\r\ntwo\r\nthree\r\n")
	cs["watcher"].expect("<guest2> one")
	c.c.SetLinger(0)
	c.c.Close()

	// A private message cannot reach it, and its sender is told so.
	d := dial(t, addr)
	cs["watcher"].expect("*** guest3 joined")
	d.send("/msg guest2 are you there\r\n")
	d.expect("*** guest2 has lost the connection; not sent")

	// Its held lines wait for a budget that refills only in 1000s, so it
	// leaves at the deadline, and its place is free.
	cs["watcher"].expect("*** guest2 left")
	e := dial(t, addr)
	e.send("/who\r\n")
	e.expect("*** 3 online: guest3, guest4, watcher")
}
