package relay

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
)

// help is what /help shows, a line a command.
var help = []string{
	"/nick NAME       change your nick (1-16 letters, digits, _ or -)",
	"/me ACTION       say what you are doing: * you ACTION",
	"/who             list who is online",
	"/msg NICK TEXT   send TEXT to NICK alone",
	"/quit [REASON]   leave the room",
	"/help            show this list",
	"//TEXT           send TEXT that starts with a /",
}

// line acts on one line that c sent; cut says that it was cut at the line
// limit. This is where client bytes become text: nothing uncleaned gets
// past it.
func (s *Server) line(c *client, raw []byte, cut bool) {
	text := bytes.TrimRight(clean(s.scratch[:0], raw), " ")
	s.scratch = text[:0]

	switch {
	case len(text) == 0:
		// Blank lines are nobody's business.
	case text[0] != '/':
		s.say(c, text)
	case len(text) > 1 && text[1] == '/':
		// A leading // sends a literal /.
		s.say(c, text[1:])
	default:
		s.command(c, string(text[1:]))
	}

	if cut && c.leave == "" {
		s.log.Info("line cut", "nick", c.nick, "addr", c.addr, "limit", s.cfg.MaxLine)
		s.send(c, msg("*** line too long: cut at ", strconv.Itoa(s.cfg.MaxLine), " bytes"))
	}
}

// say relays c's text to everyone else.
func (s *Server) say(c *client, text []byte) {
	s.relayLine(c, msg("<", c.nick, "> ", string(text)))
}

// relayLine sends msg, a line c wrote, to everyone else and counts it.
func (s *Server) relayLine(c *client, m []byte) {
	s.broadcast(c, m)
	s.count()
}

// count counts a line relayed.
func (s *Server) count() {
	s.relayed++
	s.status.changed = true
}

// command runs a command line, given without its leading /.
func (s *Server) command(c *client, line string) {
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)

	switch strings.ToLower(name) {
	case "nick":
		s.nick(c, arg)

	case "me":
		if arg == "" {
			s.send(c, msg("*** usage: /me ACTION"))
			return
		}

		s.relayLine(c, msg("* ", c.nick, " ", arg))

	case "who":
		s.who(c)

	case "msg":
		s.private(c, arg)

	case "quit":
		s.send(c, msg("*** bye"))
		s.part(c, "quit", arg)

	case "help":
		for _, h := range help {
			s.send(c, msg("*** ", h))
		}

	default:
		s.send(c, msg("*** unknown command /", name, "; /help lists them"))
	}
}

// nick renames c, if name is valid and not someone else's.
func (s *Server) nick(c *client, name string) {
	if problem := checkNick(name); problem != "" {
		s.send(c, msg("*** ", problem))
		return
	}

	key := strings.ToLower(name)
	if other := s.nicks[key]; other != nil && other != c {
		s.send(c, msg("*** ", name, " is taken"))
		return
	}

	old := c.nick
	if name == old {
		s.send(c, msg("*** you are already ", name))
		return
	}

	delete(s.nicks, strings.ToLower(old))
	s.nicks[key] = c
	c.nick = name
	s.send(c, msg("*** you are now ", name))
	s.broadcast(c, msg("*** ", old, " is now ", name))
}

// private sends the text in arg to the nick that starts it.
func (s *Server) private(c *client, arg string) {
	to, text, _ := strings.Cut(arg, " ")
	text = strings.TrimSpace(text)
	if to == "" || text == "" {
		s.send(c, msg("*** usage: /msg NICK TEXT"))
		return
	}

	target := s.nicks[strings.ToLower(to)]
	switch {
	case target == nil || target.leave != "":
		s.send(c, msg("*** no one is called ", to))
		return
	case target.deaf:
		s.send(c, msg("*** ", target.nick, " has lost the connection; not sent"))
		return
	}

	s.send(c, msg("-> *", target.nick, "* ", text))
	s.send(target, msg("*", c.nick, "* ", text))
	s.count()
}

// whoWidth is about how many bytes of nicks one /who line holds.
const whoWidth = 400

// who sends c the nicks in the room, sorted, comma separated: on one line,
// or on as many as a crowded room needs, so that no single message is too
// big for a client's queue.
func (s *Server) who(c *client) {
	names := make([]string, 0, len(s.nicks))
	for _, o := range s.nicks {
		names = append(names, o.nick)
	}

	slices.SortFunc(names, func(a, b string) int {
		return strings.Compare(strings.ToLower(a), strings.ToLower(b))
	})

	head := strconv.Itoa(len(names)) + " online: "
	for len(names) > 0 {
		n, width := 0, 0
		for n < len(names) && (n == 0 || width+len(names[n]) < whoWidth) {
			width += len(names[n]) + 2
			n++
		}

		line := strings.Join(names[:n], ", ")
		if n < len(names) {
			line += ","
		}
		s.send(c, msg("*** ", head, line))
		names, head = names[n:], ""
	}
}

// checkNick returns why name cannot be a nick, or "" if it can.
func checkNick(name string) string {
	switch {
	case name == "":
		return "usage: /nick NAME"
	case len(name) > 16:
		return "a nick is at most 16 characters"
	}

	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '_' || r == '-'
		if !ok {
			return "a nick has only letters, digits, _ and -"
		}
	}

	return ""
}

// msg returns the concatenation of parts as one protocol line, with CRLF.
func msg(parts ...string) []byte {
	n := 2
	for _, p := range parts {
		n += len(p)
	}

	b := make([]byte, 0, n)
	for _, p := range parts {
		b = append(b, p...)
	}

	return append(b, '\r', '\n')
}
