package main

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestActivation starts chatd as systemd would, with a listening socket
// passed in LISTEN_FDS and a NOTIFY_SOCKET, and checks what it reports:
// READY=1 before it serves the first client, STATUS= with the number
// online, and STOPPING=1 on SIGTERM, after which every client is told and
// chatd exits 0. The notify socket is a path in one run and an abstract
// socket in the other.
func TestActivation(t *testing.T) {
	dir, err := os.MkdirTemp("", "chatd-notify-")
	if err != nil {
		t.Fatalf("temp dir: got %v, want one", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	tests := []struct {
		name   string
		socket string
	}{
		{"path", filepath.Join(dir, "notify")},
		{"abstract", fmt.Sprintf("@chatd-test-%d-notify", os.Getpid())},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNotifySocket(t, tt.socket)
			f, addr := tcpListener(t)

			// The first client connects before chatd runs, as the one that
			// makes systemd start it does; the kernel queues it.
			first := dialRaw(t, addr, nil)
			d := startDaemon(t, daemonOpts{
				args:  []string{"--listen", "127.0.0.1:0"},
				env:   []string{n.env()},
				files: []*os.File{f},
			})
			f.Close()

			first.greeted()
			if msgs := n.drain(t); !slices.Contains(msgs, "READY=1") {
				t.Fatalf("notify at the first greeting: got %q, want READY=1", msgs)
			}

			second := dial(t, addr)
			first.expectNext("*** " + second.nick + " joined")
			n.waitMsg(t, "STATUS= with 2 online", func(m string) bool {
				return strings.HasPrefix(m, "STATUS=2 online")
			})

			d.stop(t, first, second)
			n.waitMsg(t, "STOPPING=1", func(m string) bool { return m == "STOPPING=1" })

			if log := d.stderr.String(); strings.Contains(log, "sd_notify failed") {
				t.Errorf("stderr: got %q, want no sd_notify failure", log)
			}
		})
	}
}

// TestWatchdog checks that chatd pings the watchdog when WATCHDOG_USEC and
// WATCHDOG_PID ask it to.
func TestWatchdog(t *testing.T) {
	n := newNotifySocket(t, fmt.Sprintf("@chatd-test-%d-watchdog", os.Getpid()))
	f, _ := tcpListener(t)
	startDaemon(t, daemonOpts{
		args:   []string{"--listen", "127.0.0.1:0"},
		env:    []string{n.env(), "WATCHDOG_USEC=200000"},
		files:  []*os.File{f},
		pidEnv: []string{"WATCHDOG_PID"},
	})
	f.Close()

	n.waitMsg(t, "READY=1", func(m string) bool { return m == "READY=1" })
	for range 3 {
		n.waitMsg(t, "WATCHDOG=1", func(m string) bool { return m == "WATCHDOG=1" })
		n.msgs = nil
	}
}

// TestActivationUnixSocket checks that a passed UNIX stream socket is
// served like a TCP one.
func TestActivationUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "chatd-unix-")
	if err != nil {
		t.Fatalf("temp dir: got %v, want one", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })

	path := filepath.Join(dir, "chat")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatalf("listen %s: got %v, want a socket", path, err)
	}
	l.SetUnlinkOnClose(false)
	f, err := l.File()
	if err != nil {
		t.Fatalf("listener file: got %v, want a file", err)
	}
	l.Close()
	t.Cleanup(func() { f.Close() })

	startDaemon(t, daemonOpts{args: []string{"--listen", "127.0.0.1:0"}, files: []*os.File{f}})
	f.Close()

	conn, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial %s: got %v, want a connection", path, err)
	}
	t.Cleanup(func() { conn.Close() })

	c := &client{t: t, conn: conn, r: newReader(conn)}
	c.greeted()
	c.say("/who")
	c.expectNext("*** 1 online: " + c.nick)
}

// TestActivationWrongSocket checks that a passed socket chatd cannot serve
// (a datagram socket, a stream socket that is not listening) makes it exit
// non-zero with one line on stderr that says why, without READY=1.
func TestActivationWrongSocket(t *testing.T) {
	tests := []struct {
		name string
		file func(t *testing.T) *os.File
		want string
	}{
		{"datagram", udpSocket, "not a stream socket"},
		{"not listening", connectedSocket, "not listening"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newNotifySocket(t, fmt.Sprintf("@chatd-test-%d-wrong", os.Getpid()))
			f := tt.file(t)
			d := startDaemon(t, daemonOpts{
				args:  []string{"--listen", "127.0.0.1:0"},
				env:   []string{n.env()},
				files: []*os.File{f},
			})
			f.Close()

			if got := d.wait(t); got == 0 {
				t.Fatalf("exit status: got 0, want non-zero")
			}

			errOut := d.stderr.String()
			if strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tt.want) {
				t.Errorf("stderr: got %q, want one line saying %q", errOut, tt.want)
			}

			if msgs := n.drain(t); slices.Contains(msgs, "READY=1") {
				t.Errorf("notify: got %q, want no READY=1", msgs)
			}
		})
	}
}

// udpSocket returns a bound loopback UDP socket as a file.
func udpSocket(t *testing.T) *os.File {
	t.Helper()

	c, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen udp: got %v, want a socket", err)
	}

	return fileOf(t, c.(*net.UDPConn))
}

// connectedSocket returns one end of a connected TCP loopback connection as
// a file.
func connectedSocket(t *testing.T) *os.File {
	t.Helper()

	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: got %v, want a socket", err)
	}
	defer l.Close()

	c, err := net.Dial("tcp4", l.Addr().String())
	if err != nil {
		t.Fatalf("dial: got %v, want a connection", err)
	}

	return fileOf(t, c.(*net.TCPConn))
}
