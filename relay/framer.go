package relay

import "unicode/utf8"

// frame says what framer.next found.
type frame uint8

const (
	frameNone frame = iota // input used up before a line end
	frameLine              // a complete line
	frameCut               // the first max bytes of a line that is longer
)

// framer splits one client's byte stream into lines. It accepts LF, CRLF,
// CR NUL and a bare CR as line ends, and a line end may arrive in a later
// read than the text before it. A line longer than max is delivered cut at
// max bytes (on a UTF-8 boundary where the cut would split a character), and
// what follows up to its line end is dropped.
type framer struct {
	max     int    // longest line in bytes
	buf     []byte // the line so far, at most max bytes
	afterCR bool   // the last byte was a CR: a following LF or NUL is part of it
	cutting bool   // the line was cut; dropping bytes up to its end
}

// next consumes bytes of p until it completes a line or p runs out, and
// returns the line, how many bytes it consumed and what it found:
//   - frameLine: line is a whole line, without its line end;
//   - frameCut: line is the start of an overlong line;
//   - frameNone: all of p was consumed and no line is complete yet.
//
// The line is only valid until the next call.
func (f *framer) next(p []byte) (line []byte, n int, kind frame) {
	for i, b := range p {
		if f.afterCR {
			f.afterCR = false
			if b == '\n' || b == 0 {
				continue
			}
		}

		switch {
		case b == '\n' || b == '\r':
			f.afterCR = b == '\r'
			if f.cutting {
				// The end of a line that was already delivered cut.
				f.cutting = false
				continue
			}

			line, f.buf = f.buf, f.buf[:0]
			return line, i + 1, frameLine

		case f.cutting:
			// Part of an overlong line: dropped.

		case len(f.buf) < f.max:
			f.buf = append(f.buf, b)

		default:
			f.cutting = true
			line, f.buf = cutUTF8(f.buf, b), f.buf[:0]
			return line, i + 1, frameCut
		}
	}

	return nil, len(p), frameNone
}

// rest returns what is left of an unfinished line when the stream ends, or
// nil if there is none, and resets the framer.
func (f *framer) rest() []byte {
	line := f.buf
	f.buf, f.cutting, f.afterCR = f.buf[:0], false, false
	if len(line) == 0 {
		return nil
	}

	return line
}

// cutUTF8 returns buf, a full line buffer that next would have continued,
// shortened so that it does not end inside a multi-byte character.
func cutUTF8(buf []byte, next byte) []byte {
	if utf8.RuneStart(next) {
		return buf
	}

	// next continues a character; find where that character starts.
	for i := len(buf) - 1; i >= 0 && i >= len(buf)-(utf8.UTFMax-1); i-- {
		if utf8.RuneStart(buf[i]) {
			if buf[i] >= 0xC0 {
				return buf[:i]
			}

			break
		}
	}

	// Invalid bytes: no character to keep whole, cut at the limit.
	return buf
}
