package main

import (
	"net"
	"strings"
	"syscall"
	"testing"
)

// TestFlags checks that chatd started with flags it cannot serve with
// exits at once, non-zero, with one line on stderr that says why, and that
// --help and --version exit 0.
func TestFlags(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: got %v, want a socket", err)
	}
	defer busy.Close()

	tests := []struct {
		name   string
		args   []string
		exit   int
		stdout string // a word the output must contain
		stderr string // a word the one stderr line must contain; "" for no output
	}{
		{name: "version", args: []string{"--version"}, stdout: "chatd devel"},
		{name: "help", args: []string{"--help"}, stdout: "-max-clients"},
		{name: "unknown flag", args: []string{"--bogus"}, exit: 2, stderr: "-bogus"},
		{name: "bad number", args: []string{"--max-line", "many"}, exit: 2, stderr: "max-line"},
		{name: "line too short", args: []string{"--max-line", "5"}, exit: 2, stderr: "max-line"},
		{name: "sendq too small", args: []string{"--sendq", "100"}, exit: 2, stderr: "sendq"},
		{name: "no clients", args: []string{"--max-clients", "0"}, exit: 2, stderr: "max-clients"},
		{name: "negative rate", args: []string{"--rate", "-1"}, exit: 2, stderr: "rate"},
		{name: "NaN rate", args: []string{"--rate", "NaN"}, exit: 2, stderr: "rate"},
		{name: "infinite rate", args: []string{"--rate", "Inf"}, exit: 2, stderr: "rate"},
		{name: "overflowing line", args: []string{"--max-line", "4611686018427387904",
			"--sendq", "100"}, exit: 2, stderr: "max-line"},
		{name: "argument", args: []string{"extra"}, exit: 2, stderr: "extra"},
		{name: "address in use", args: []string{"--listen", busy.Addr().String()}, exit: 1,
			stderr: "address already in use"},
		{name: "bad port", args: []string{"--listen", "127.0.0.1:99999"}, exit: 2,
			stderr: "99999"},
		{name: "no port", args: []string{"--listen", "nonsense"}, exit: 2, stderr: "nonsense"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := startDaemon(t, daemonOpts{args: tt.args})
			if got := d.wait(t); got != tt.exit {
				t.Fatalf("exit status: got %d, want %d", got, tt.exit)
			}

			if out := d.stdout.String(); !strings.Contains(out, tt.stdout) {
				t.Errorf("stdout: got %q, want it to contain %q", out, tt.stdout)
			}

			errOut := d.stderr.String()
			switch {
			case tt.stderr == "" && errOut != "":
				t.Errorf("stderr: got %q, want nothing", errOut)
			case tt.stderr == "":
			case strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "chatd: "):
				t.Errorf("stderr: got %q, want one line starting chatd: ", errOut)
			case !strings.Contains(errOut, tt.stderr):
				t.Errorf("stderr: got %q, want it to mention %q", errOut, tt.stderr)
			}
		})
	}
}

// TestListenRepeated checks that chatd started by hand, without systemd
// and without NOTIFY_SOCKET, serves every --listen address as one room,
// and stops cleanly on SIGTERM.
func TestListenRepeated(t *testing.T) {
	a, b := freeAddr(t), freeAddr(t)
	d := startDaemon(t, daemonOpts{args: []string{"--listen", a, "--listen", b}})
	d.waitLog(t, 1, "serving", "listeners=2")

	alice, bob := dial(t, a), dial(t, b)
	alice.expectNext("*** " + bob.nick + " joined")
	alice.say("hello over there")
	bob.expectNext("<" + alice.nick + "> hello over there")
	bob.say("and back")
	alice.expectNext("<" + bob.nick + "> and back")

	d.stop(t, alice, bob)
	if log := d.stderr.String(); strings.Contains(log, "sd_notify") {
		t.Errorf("stderr without NOTIFY_SOCKET: got %q, want no sd_notify complaint", log)
	}
}

// TestChat runs a few rows of Protocol v1 through the binary with two
// clients; package relay tests every row in detail.
func TestChat(t *testing.T) {
	d, addr := startActivated(t, nil)
	a := dial(t, addr)
	b := dial(t, addr)
	a.expectNext("*** " + b.nick + " joined")
	guest := a.nick

	steps := []struct {
		name     string
		from     *client
		line     string
		self     string // what the sender sees; "" for nothing
		other    string // what the other sees; "" for nothing
		receiver *client
	}{
		{"plain line", a, "hello", "", "<" + guest + "> hello", b},
		{"nick", a, "/nick alice", "*** you are now alice", "*** " + guest + " is now alice", b},
		{"taken nick", b, "/nick ALICE", "*** ALICE is taken", "", a},
		{"me", a, "/me waves", "", "* alice waves", b},
		{"who", b, "/who", "*** 2 online: alice, " + b.nick, "", a},
		{"private", b, "/msg alice psst", "-> *alice* psst", "*" + b.nick + "* psst", a},
		{"literal slash", a, "//etc", "", "<alice> /etc", b},
		{"unknown command", a, "/frob", "*** unknown command /frob; /help lists them", "", b},
		{"blank line", a, "   ", "", "", b},
	}

	for _, st := range steps {
		t.Logf("step: %s", st.name)
		st.from.say(st.line)
		if st.self != "" {
			st.from.expectNext(st.self)
		}
		if st.other != "" {
			st.receiver.expectNext(st.other)
		}
	}

	// Nothing else reached either side: each says something now, and the
	// other's next line must be exactly that.
	a.say("end a")
	b.expectNext("<alice> end a")
	b.say("end b")
	a.expectNext("<" + b.nick + "> end b")

	a.say("/quit off to lunch")
	a.expectNext("*** bye")
	a.expectEOF()
	b.expectNext("*** alice left (off to lunch)")

	d.stop(t, b)
}

// TestSIGHUP checks that SIGHUP, which will one day reload the message of
// the day, leaves the room running.
func TestSIGHUP(t *testing.T) {
	d, addr := startActivated(t, nil)
	a := dial(t, addr)
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("SIGHUP: got %v, want it sent", err)
	}
	d.waitLog(t, 1, "SIGHUP")

	b := dial(t, addr)
	a.expectNext("*** " + b.nick + " joined")
	d.stop(t, a, b)
}
