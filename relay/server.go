package relay

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Config holds a Server's limits and the callbacks it reports through. Zero
// limits take the defaults below; callbacks may be nil.
type Config struct {
	MaxLine    int     // longest line in bytes; longer ones are cut (2048)
	SendQ      int     // bytes left queued to a client after a write before it is dropped (65536)
	MaxClients int     // connections at once (1000)
	MaxPerIP   int     // connections at once from one IP address (16)
	Rate       float64 // lines a second a client may send; 0 for no limit
	Burst      int     // lines a client may send at once above Rate (20)

	// ShutdownTimeout bounds how long Serve spends, after Shutdown, telling
	// clients and flushing their queues (2s).
	ShutdownTimeout time.Duration

	// Logger receives one record per event: start, stop, connections,
	// disconnects with their reason, limits hit. Never what people say.
	Logger *slog.Logger

	// Ready is called once, when the listeners are being polled.
	Ready func()

	// Status is called when Stats change, at most once a second.
	Status func(Stats)

	// Heartbeat is called every HeartbeatEvery from inside the loop, so
	// that a loop that stops turning stops calling it.
	Heartbeat      func()
	HeartbeatEvery time.Duration
}

// Stats is a summary of the room, for status reports.
type Stats struct {
	Online  int    // clients in the room
	Relayed uint64 // lines relayed since start
}

// Server is a chat room. Make one with New and run it with Serve.
type Server struct {
	cfg Config
	log *slog.Logger

	// mu guards stop and wake, the only state shared with Shutdown.
	mu   sync.Mutex
	stop bool // Shutdown was called
	wake int  // eventfd that wakes the loop; -1 when Serve is not running

	// turns counts loop turns, so that tests can see an idle loop sleep.
	turns atomic.Uint64

	// Everything below belongs to the loop.
	listeners  []int
	clients    []*client          // every open connection, in accept order
	nicks      map[string]*client // clients in the room by lower-case nick
	perIP      map[string]int     // open connections by IP address
	guests     int                // number of the last guest nick given
	relayed    uint64             // lines relayed since start
	dirty      []*client          // clients with output queued since the last flush
	reap       bool               // some client is leaving and still in the room
	gone       int                // clients out of the room whose fds are still open
	acceptAt   time.Time          // when accepting may resume after running out of fds
	stopAt     time.Time          // shutdown deadline; zero until shutdown begins
	status     statusClock        // when Status was last called, and whether it is due
	notices    bucket             // paces join and leave notices for the whole room
	unshown    int                // notices held back by that pace, not yet announced
	held       bool               // pollSet saw a client held back by its rate, or deaf
	heartbeat  time.Time          // when Heartbeat is next due
	pfds       []unix.PollFd      // the poll set, laid out anew each turn by pollSet
	rbuf, fbuf []byte             // read buffer and its telnet-filtered copy, shared by all clients
	scratch    []byte             // for cleaning one line at a time
	iovs       [][]byte           // the buffers of one gathering write
}

// statusClock paces Status calls.
type statusClock struct {
	changed bool      // Stats changed since the last call
	last    time.Time // time of the last call
}

const (
	readChunk     = 4096                   // bytes read from one client per loop turn
	acceptBackoff = 250 * time.Millisecond // pause after running out of fds
	lingerTime    = 2 * time.Second        // for a leaving client to be flushed and send its EOF
	statusEvery   = time.Second            // at most one Status call this often
	noticeRate    = 5                      // join and leave notices a second, for the whole room
	noticeBurst   = 30                     // notices at once above noticeRate
)

// deafTime is how long a deaf client's unread and held input may go on
// going out (see client.deaf). A variable so that tests can shorten it.
var deafTime = 10 * time.Second

// Bounds of the limits in Config, to keep each one meaningful and their
// sums clear of overflow.
const (
	maxLineMax = 1 << 20 // bytes in a line
	sendQMin   = 4096    // and at least four lines (a cleaned line can triple)
	sendQMax   = 1 << 30 // bytes queued to one client
	clientsMax = 1 << 20 // clients in all, and from one address
	rateMin    = 0.001   // lines a second, unless 0 for no limit
	rateMax    = 1e6
	burstMax   = 1 << 20
)

// Check returns an error saying what is wrong with the limits in cfg, or nil
// if they make a working room. It does not fill in defaults: zero is an
// error here except for Rate. Errors name each limit by its chatd flag.
func (cfg Config) Check() error {
	switch {
	case cfg.MaxLine < 16 || cfg.MaxLine > maxLineMax:
		return fmt.Errorf("--max-line %d is not between 16 and %d bytes", cfg.MaxLine, maxLineMax)
	case cfg.SendQ < sendQMin || cfg.SendQ > sendQMax:
		return fmt.Errorf("--sendq %d is not between %d and %d bytes", cfg.SendQ, sendQMin, sendQMax)
	case cfg.SendQ < 4*cfg.MaxLine:
		return fmt.Errorf("--sendq %d is less than four lines of --max-line %d; make it at least %d",
			cfg.SendQ, cfg.MaxLine, 4*cfg.MaxLine)
	case cfg.MaxClients < 1 || cfg.MaxClients > clientsMax:
		return fmt.Errorf("--max-clients %d is not between 1 and %d", cfg.MaxClients, clientsMax)
	case cfg.MaxPerIP < 1 || cfg.MaxPerIP > clientsMax:
		return fmt.Errorf("--max-per-ip %d is not between 1 and %d", cfg.MaxPerIP, clientsMax)
	case cfg.Rate != 0 && !(cfg.Rate >= rateMin && cfg.Rate <= rateMax):
		// Written so that NaN fails too.
		return fmt.Errorf("--rate %g is neither 0 nor between %g and %g lines a second",
			cfg.Rate, rateMin, rateMax)
	case cfg.Burst < 1 || cfg.Burst > burstMax:
		return fmt.Errorf("--burst %d is not between 1 and %d lines", cfg.Burst, burstMax)
	}

	return nil
}

// New returns a Server for cfg, with defaults for its zero limits, that is
// ready to Serve; or an error if cfg fails Check.
func New(cfg Config) (*Server, error) {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.MaxLine, 2048)
	def(&cfg.SendQ, 65536)
	def(&cfg.MaxClients, 1000)
	def(&cfg.MaxPerIP, 16)
	def(&cfg.Burst, 20)
	if cfg.ShutdownTimeout == 0 {
		cfg.ShutdownTimeout = 2 * time.Second
	}

	if err := cfg.Check(); err != nil {
		return nil, err
	}

	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}

	return &Server{
		cfg:   cfg,
		log:   log,
		wake:  -1,
		nicks: make(map[string]*client),
		perIP: make(map[string]int),
		rbuf:  make([]byte, readChunk),
	}, nil
}

// Shutdown makes Serve tell every client that the server is shutting down,
// flush what is queued for at most Config.ShutdownTimeout, close everything
// and return. It may be called from any goroutine, also before Serve, and
// more than once.
func (s *Server) Shutdown() {
	s.mu.Lock()
	defer s.mu.Unlock()

	s.stop = true
	if s.wake >= 0 {
		// An eventfd write fails only if the counter would overflow, and
		// then the loop has a wake-up pending anyway.
		_ = wakeUp(s.wake)
	}
}

// stopping reports whether Shutdown has been called.
func (s *Server) stopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()

	return s.stop
}

// stats returns the room's numbers.
func (s *Server) stats() Stats {
	return Stats{Online: len(s.nicks), Relayed: s.relayed}
}
