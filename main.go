// Command chatd is a chat room for the terminal. People connect with telnet
// or nc, and every line one of them types reaches all the others.
//
// chatd serves the listening sockets that systemd passes it (socket
// activation), or binds the --listen addresses itself when started by hand.
// It tells systemd through sd_notify when it is ready, what it is doing,
// that it is still alive (when the unit sets WatchdogSec=) and when it is
// stopping. SIGTERM or SIGINT makes it tell every client, flush, and exit 0.
// The chat itself lives in package relay; this file is the process around
// it: flags, logging, listeners, signals and systemd.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"

	"github.com/chatd/chatd/relay"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "devel"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are chatd's command-line settings.
type options struct {
	listen  []string
	version bool
	relay   relay.Config
}

// run is chatd from start to exit, returning the exit status: 0 after a
// normal stop (and for --help and --version), 2 for bad flags, 1 for any
// other error, which it prints as one line on stderr.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "chatd: %v (chatd --help lists the flags)\n", err)
		return 2
	case opts.version:
		fmt.Fprintln(stdout, "chatd", version)
		return 0
	}

	log := newLogger(stderr)
	if err := serve(opts, log); err != nil {
		fmt.Fprintf(stderr, "chatd: %v\n", err)
		return 1
	}

	return 0
}

// listFlag is a flag that may be given more than once.
type listFlag struct {
	values []string
	set    bool // given on the command line: replaces the default
}

func (l *listFlag) String() string { return strings.Join(l.values, ",") }

func (l *listFlag) Set(v string) error {
	if !l.set {
		l.values, l.set = nil, true
	}
	l.values = append(l.values, v)
	return nil
}

// parseFlags parses args into options. Problems come back as errors, for
// the caller to print as one line; --help prints the usage text on stdout
// and comes back as flag.ErrHelp.
func parseFlags(args []string, stdout io.Writer) (options, error) {
	var opts options
	fs := flag.NewFlagSet("chatd", flag.ContinueOnError)

	// The flag package prints its errors, and the usage text after them,
	// to the output; keep it silent and print the usage only when asked.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	usage := func() {
		fs.SetOutput(stdout)
		fmt.Fprintf(stdout, "usage: chatd [flags]\n\n"+
			"A chat room for telnet and nc. Under systemd it serves the sockets it is\n"+
			"passed; otherwise it listens on --listen.\n\nflags:\n")
		fs.PrintDefaults()
	}

	listen := &listFlag{values: []string{":8008"}}
	cfg := &opts.relay
	fs.Var(listen, "listen", "`address` to listen on when systemd passes no socket; repeatable")
	fs.IntVar(&cfg.MaxLine, "max-line", 2048, "longest line in `bytes`; longer lines are cut")
	fs.IntVar(&cfg.SendQ, "sendq", 65536,
		"`bytes` left queued to one client before it is dropped as too slow")
	fs.IntVar(&cfg.MaxClients, "max-clients", 1000, "most clients connected at once")
	fs.IntVar(&cfg.MaxPerIP, "max-per-ip", 16, "most clients connected at once from one IP address")
	fs.Float64Var(&cfg.Rate, "rate", 5, "lines a second one client may send (0: no limit)")
	fs.IntVar(&cfg.Burst, "burst", 20, "lines one client may send at once before --rate applies")
	fs.BoolVar(&opts.version, "version", false, "print the version and exit")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
		}
		return opts, err
	}

	opts.listen = listen.values
	if fs.NArg() > 0 {
		return opts, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	for _, addr := range opts.listen {
		if err := checkAddr(addr); err != nil {
			return opts, fmt.Errorf("--listen %q: %w", addr, err)
		}
	}

	return opts, cfg.Check()
}

// checkAddr returns an error unless addr is host:port with a numeric port;
// the host may be empty (every address), an IP address or a name.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}

	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return errors.New("the port must be a number from 0 to 65535")
	}

	return nil
}

// serve runs the chat room until a signal stops it.
func serve(opts options, log *slog.Logger) error {
	fds, err := listeners(opts.listen)
	if err != nil {
		return err
	}

	log.Info("starting", "version", version)
	for _, fd := range fds {
		log.Info("listening", "addr", sockName(fd))
	}

	n := newNotifier(log)
	cfg := opts.relay
	cfg.Logger = log
	cfg.Ready = func() { n.send("READY=1") }
	cfg.Status = func(st relay.Stats) { n.post("STATUS=" + statusText(st)) }

	if every, err := daemon.SdWatchdogEnabled(false); err != nil {
		log.Warn("watchdog settings ignored", "err", err)
	} else if every > 0 {
		cfg.Heartbeat = func() { n.post("WATCHDOG=1") }
		cfg.HeartbeatEvery = every / 2
	}

	srv, err := relay.New(cfg)
	if err != nil {
		closeAll(fds)
		return err
	}

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGHUP {
				// TODO(chatd): reload the message of the day here, once
				// there is one; until then SIGHUP must not stop the room.
				log.Info("SIGHUP: nothing to reload")
				continue
			}

			log.Info("stopping", "signal", sig.String())
			n.send("STOPPING=1")
			srv.Shutdown()
		}
	}()

	return srv.Serve(fds)
}

// statusText is the live summary systemd shows as the unit's status.
func statusText(st relay.Stats) string {
	msgs := "messages"
	if st.Relayed == 1 {
		msgs = "message"
	}

	return fmt.Sprintf("%d online, %d %s relayed", st.Online, st.Relayed, msgs)
}

// listeners returns the listening sockets to serve as non-blocking fds that
// chatd owns: those systemd passed, if any, else new ones bound to addrs.
func listeners(addrs []string) ([]int, error) {
	// Unset LISTEN_* so that nothing chatd might start inherits them.
	if files := activation.Files(true); len(files) > 0 {
		return passed(files)
	}

	fds := make([]int, 0, len(addrs))
	for _, addr := range addrs {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			closeAll(fds)
			return nil, err
		}

		fd, err := takeFD(l.(*net.TCPListener))
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		fds = append(fds, fd)
	}

	return fds, nil
}

// passed checks that the files systemd passed are listening stream sockets
// and takes them over.
func passed(files []*os.File) ([]int, error) {
	fds := make([]int, 0, len(files))
	for i, f := range files {
		fd, err := takeFD(f)
		if err == nil {
			err = checkListener(fd)
		}

		if err != nil {
			closeAll(fds)
			for _, rest := range files[i+1:] {
				rest.Close()
			}
			return nil, fmt.Errorf("passed socket %s: %w", f.Name(), err)
		}
		fds = append(fds, fd)
	}

	return fds, nil
}

// checkListener returns an error unless fd is a listening stream socket,
// and then closes fd too.
func checkListener(fd int) error {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		_ = unix.Close(fd)
		return os.NewSyscallError("getsockopt", err)
	}

	listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	switch {
	case err != nil:
		err = os.NewSyscallError("getsockopt", err)
	case typ != unix.SOCK_STREAM:
		err = errors.New("not a stream socket (check ListenStream= in the socket unit)")
	case listening == 0:
		err = errors.New("not listening")
	}

	if err != nil {
		_ = unix.Close(fd)
	}
	return err
}

// takeFD returns a non-blocking, close-on-exec duplicate of c's descriptor
// and closes c. Duplicating, rather than keeping c's own descriptor, means
// no finalizer can close it under the loop, and (*os.File).Fd, which would
// make it blocking, is never called.
func takeFD(c interface {
	SyscallConn() (syscall.RawConn, error)
	Close() error
}) (int, error) {
	defer c.Close()

	rc, err := c.SyscallConn()
	if err != nil {
		return -1, err
	}

	fd, dupErr := -1, error(nil)
	err = rc.Control(func(orig uintptr) {
		fd, dupErr = unix.FcntlInt(orig, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err == nil {
		err = os.NewSyscallError("fcntl", dupErr)
	}

	if err == nil {
		err = os.NewSyscallError("fcntl", unix.SetNonblock(fd, true))
	}

	if err != nil && fd >= 0 {
		_ = unix.Close(fd)
		fd = -1
	}
	return fd, err
}

// sockName returns the local address of socket fd, for the log.
func sockName(fd int) string {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "unknown"
	}

	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)).String()
	case *unix.SockaddrUnix:
		return "unix:" + sa.Name
	}

	return "unknown"
}

// closeAll closes fds.
func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}
