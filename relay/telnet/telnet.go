// Package telnet strips the telnet protocol out of a client's byte stream.
//
// A Filter takes the raw bytes a client sent and keeps only its data: option
// negotiation (WILL, WONT, DO, DONT), subnegotiation (SB ... SE) and the
// two-byte commands (IP, AYT, NOP and the rest) are removed, and IAC IAC
// becomes the single data byte 0xFF. A sequence may be split across calls at
// any byte. chatd supports no telnet option, so every request to enable one
// is refused in telnet's own terms: WILL is answered with DONT and DO with
// WONT. WONT and DONT are never answered, since they ask for the state the
// server is already in, which is what keeps negotiation from looping.
//
// A subnegotiation that runs past MaxSub bytes without its IAC SE is taken
// to be no subnegotiation at all (a client that is not telnet sent bytes
// that looked like one) and dropped, so that the data after it is kept.
package telnet

// MaxSub bounds a subnegotiation. The ones telnet clients send (window
// size, terminal type, environment) are far shorter.
const MaxSub = 256

// Telnet command bytes (RFC 854).
const (
	se   = 240 // end of subnegotiation
	sb   = 250 // start of subnegotiation
	will = 251
	wont = 252
	do   = 253
	dont = 254
	iac  = 255 // interpret as command
)

// state is where a Filter stands in the command syntax.
type state uint8

const (
	stData   state = iota // plain data
	stIAC                 // after IAC
	stOption              // after IAC and a verb; the option byte is next
	stSub                 // inside a subnegotiation
	stSubIAC              // after IAC inside a subnegotiation
)

// Filter removes telnet commands from one connection's byte stream. The zero
// value is ready to use; it keeps two bytes of state and never buffers data.
type Filter struct {
	st   state
	verb byte // WILL, WONT, DO or DONT while st is stOption
	sub  int  // bytes of the subnegotiation so far, at most MaxSub
}

// Feed appends the data bytes of src to data and the replies the peer is owed
// to reply, and returns both. Replies must be sent to the peer as they are.
func (f *Filter) Feed(data, reply, src []byte) ([]byte, []byte) {
	for _, b := range src {
		switch f.st {
		case stData:
			if b == iac {
				f.st = stIAC
			} else {
				data = append(data, b)
			}

		case stIAC:
			f.st = stData
			switch b {
			case iac:
				// An escaped 0xFF is data.
				data = append(data, iac)
			case will, wont, do, dont:
				f.st, f.verb = stOption, b
			case sb:
				f.st, f.sub = stSub, 0
			}
			// Anything else is a two-byte command (NOP, IP, AYT, GA, ...):
			// none of them means anything to a chat room.

		case stOption:
			f.st = stData
			switch f.verb {
			case will:
				reply = append(reply, iac, dont, b)
			case do:
				reply = append(reply, iac, wont, b)
			}

		case stSub:
			f.sub++
			switch {
			case f.sub > MaxSub:
				// Not telnet after all: this byte and what follows are
				// data.
				f.st = stData
				if b == iac {
					f.st = stIAC
				} else {
					data = append(data, b)
				}
			case b == iac:
				f.st = stSubIAC
			}

		case stSubIAC:
			// IAC SE ends the subnegotiation; IAC IAC is an escaped byte
			// inside it, and anything else is malformed but cannot end it.
			f.sub++
			if b == se {
				f.st = stData
			} else {
				f.st = stSub
			}
		}
	}

	return data, reply
}
