package main

import (
	"log/slog"

	"github.com/coreos/go-systemd/v22/daemon"
)

// notifier sends sd_notify messages to systemd. Without NOTIFY_SOCKET it
// sends nothing, and nothing fails.
//
// The loop's own reports (STATUS=, WATCHDOG=1) go through post, which never
// blocks: a goroutine sends them, so that a stalled notify socket cannot
// stall the loop. READY=1 and STOPPING=1 go through send, which returns once
// they are sent, so that systemd learns them in order.
type notifier struct {
	log   *slog.Logger
	queue chan string // posted messages, for the sending goroutine
}

// newNotifier returns a notifier with its sending goroutine running.
func newNotifier(log *slog.Logger) *notifier {
	n := &notifier{log: log, queue: make(chan string, 8)}
	go func() {
		for state := range n.queue {
			n.send(state)
		}
	}()

	return n
}

// send sends state to systemd now.
func (n *notifier) send(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		n.log.Warn("sd_notify failed", "err", err)
	}
}

// post queues state to be sent soon. If the queue is full, systemd is not
// reading and the message is dropped; the next one carries the news.
func (n *notifier) post(state string) {
	select {
	case n.queue <- state:
	default:
	}
}
