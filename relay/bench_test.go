package relay_test

import (
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/chatd/chatd/relay"
)

// BenchmarkFanout measures lines relayed from one sender to 50 readers over
// loopback: ns/op is the time for one line to reach every reader.
func BenchmarkFanout(b *testing.B) {
	const readers = 50

	_, addr := start(b, relay.Config{SendQ: 1 << 20, MaxPerIP: readers + 1})
	sender := dial(b, addr)

	done := make(chan error, readers)
	for range readers {
		c := dial(b, addr)
		go func() {
			// Skip the notices of the readers after this one.
			for {
				l, err := c.r.ReadString('\n')
				if err != nil {
					done <- err
					return
				}

				if strings.HasSuffix(l, "> start\r\n") {
					break
				}
			}

			for range b.N {
				if _, err := c.r.ReadString('\n'); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	sender.send("start\n")

	line := strings.Repeat("x", 60) + "\n"
	batch := strings.Repeat(line, 64)
	b.SetBytes(int64(len(line)))
	b.ResetTimer()
	for i := 0; i < b.N; i += 64 {
		n := min(64, b.N-i)
		if _, err := io.WriteString(sender.c, batch[:n*len(line)]); err != nil {
			b.Fatal(err)
		}
	}

	for range readers {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIdleClients measures a room of 200 idle clients: ns/op is one
// command's round trip through it, heapB/client the heap each client costs, the
// server's share and its test connection's together.
func BenchmarkIdleClients(b *testing.B) {
	const clients = 200

	_, addr := start(b, relay.Config{MaxPerIP: clients})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	cs := make([]*conn, clients)
	for i := range cs {
		cs[i] = dialRaw(b, addr)
	}
	// Join notices past the room's pace come later as a count; skip them.
	last := cs[clients-1]
	last.expectPrefix("*** welcome")
	last.send("/nick\r\n")
	last.skipTo("*** usage: /nick NAME")

	runtime.GC()
	runtime.ReadMemStats(&after)
	perClient := float64(after.HeapAlloc-before.HeapAlloc) / clients

	b.ResetTimer()
	for range b.N {
		last.send("/nick\r\n")
		last.skipTo("*** usage: /nick NAME")
	}
	b.ReportMetric(perClient, "heapB/client")
}
