// Package relay is chatd's chat engine: a room of line-based clients
// served by one poll(2) loop.
//
// A Server owns every file descriptor it is given or accepts. Serve runs the
// loop on the calling goroutine until Shutdown is called: one unix.Poll over
// the listeners, the clients and a wake-up eventfd, with no goroutine per
// client and no call inside the loop that can block. Each turn of the loop
// accepts, reads at most one bounded chunk from each readable client, splits
// it into lines, acts on each line, and then gives every client with new
// output one gathering write of all it has queued (a queue about to pass its
// limit within the turn is written early). A message is encoded once and the
// same bytes are queued to every recipient.
//
// Clients cannot hurt one another. Telnet commands are stripped and refused,
// control characters and escape sequences never reach another terminal, and
// invalid UTF-8 is replaced. A client that sends faster than its line rate
// is simply not read until its budget refills, so the kernel pushes back on
// it and nothing it typed is lost. A client whose output queue passes its
// limit (a reader too slow for the room) is disconnected; the others never
// wait for it. A client whose connection fails leaves once what it sent has
// been read and said, within a bounded time.
//
// A client leaves the room in two steps. First it is marked (part, or drop
// for one that must go at once), and the loop's next departures step takes
// it out of the room and tells the others. Then its connection is flushed,
// sent EOF and closed, unless it was dropped; until it is closed it still
// counts against the connection limits.
//
// The package knows nothing of systemd and never logs on its own account or
// exits the process. Callers pass listening sockets as plain fds, a
// *slog.Logger for events, and callbacks for readiness, status and the
// watchdog, which run on the loop's goroutine and must return quickly.
// Shutdown is the one method that is safe to call from another goroutine.
package relay
