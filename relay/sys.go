package relay

import (
	"encoding/binary"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// The system calls the loop makes, with EINTR handled here and nowhere else.
// EINTR only means a signal arrived while the call was in progress (the Go
// runtime's own signals do that often): poll returns as if nothing happened,
// so that the loop recomputes its timeout, and the others are made again.
// EAGAIN is passed up: to the loop it means "nothing now", and each
// caller decides what that means for its client.

// poll waits for events on fds for at most timeout milliseconds (-1 for no
// limit) and returns how many fds have events.
func poll(fds []unix.PollFd, timeout int) (int, error) {
	n, err := unix.Poll(fds, timeout)
	if err == unix.EINTR {
		return 0, nil
	}

	return n, os.NewSyscallError("poll", err)
}

// accept takes a connection from listener fd, made non-blocking and
// close-on-exec.
func accept(fd int) (int, unix.Sockaddr, error) {
	for {
		nfd, sa, err := unix.Accept4(fd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != unix.EINTR {
			return nfd, sa, os.NewSyscallError("accept4", err)
		}
	}
}

// read reads from fd into p. It returns 0 and a nil error at EOF.
func read(fd int, p []byte) (int, error) {
	for {
		n, err := unix.Read(fd, p)
		if err != unix.EINTR {
			return max(n, 0), os.NewSyscallError("read", err)
		}
	}
}

// writev writes the buffers to socket fd in one call and returns how many
// bytes went. It is sendmsg rather than writev so that MSG_NOSIGNAL can
// turn a write to a vanished peer into EPIPE instead of SIGPIPE.
func writev(fd int, bufs [][]byte) (int, error) {
	for {
		n, err := unix.SendmsgBuffers(fd, bufs, nil, nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			return n, os.NewSyscallError("sendmsg", err)
		}
	}
}

// isAgain reports whether err means the call would have blocked.
func isAgain(err error) bool {
	return errors.Is(err, unix.EAGAIN)
}

// newWake returns a non-blocking eventfd for waking the loop.
func newWake() (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	return fd, os.NewSyscallError("eventfd", err)
}

// wakeUp makes eventfd fd readable.
func wakeUp(fd int) error {
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, err := unix.Write(fd, one[:])
	return os.NewSyscallError("write", err)
}

// drainWake makes eventfd fd unreadable again.
func drainWake(fd int) {
	var buf [8]byte
	// EAGAIN means another read got there first; nothing else can fail.
	_, _ = unix.Read(fd, buf[:])
}

// closeWrite sends EOF to the peer of socket fd while leaving the socket open
// for reading.
func closeWrite(fd int) {
	// It fails only if the peer is gone already, and then closing is all
	// that is left to do anyway.
	_ = unix.Shutdown(fd, unix.SHUT_WR)
}
