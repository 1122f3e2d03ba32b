package relay

import "unicode/utf8"

// clean appends to dst the text of line as it may be shown on another
// person's terminal, and returns the extended slice:
//   - invalid UTF-8 becomes U+FFFD;
//   - escape sequences (ESC or a C1 introducer and all that belongs to
//     them: CSI, OSC, DCS and the other strings, the short forms) go whole;
//   - other C0 and C1 control characters, and the Unicode controls that
//     reorder or break text, are removed;
//   - TAB becomes a space;
//   - BS and DEL erase the character before them, and ^U the whole line, as
//     a terminal in character mode would have meant them.
func clean(dst, line []byte) []byte {
	start := len(dst)
	for i := 0; i < len(line); {
		r, size := utf8.DecodeRune(line[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = utf8.AppendRune(dst, utf8.RuneError)

		case r == '\t':
			dst = append(dst, ' ')

		case r == '\b' || r == 0x7F:
			if len(dst) > start {
				_, n := utf8.DecodeLastRune(dst[start:])
				dst = dst[:len(dst)-n]
			}

		case r == 0x15: // ^U, kill line
			dst = dst[:start]

		case r == 0x1B:
			size += escapeLen(line[i+1:])

		case r == 0x9B: // C1 CSI
			size += controlSeqLen(line[i+size:])

		case r == 0x90 || r == 0x98 || r == 0x9D || r == 0x9E || r == 0x9F:
			// C1 DCS, SOS, OSC, PM and APC open a string.
			size += stringLen(line[i+size:])

		case r < 0x20 || (r >= 0x80 && r < 0xA0) || hidden(r):
			// Dropped.

		default:
			dst = append(dst, line[i:i+size]...)
		}

		i += size
	}

	return dst
}

// hidden reports whether r is an invisible Unicode control that changes how
// the text around it is laid out: the bidirectional marks, embeddings,
// overrides and isolates, which could make one person's line read as
// something else, the deprecated format controls, and the line and
// paragraph separators. Joiners, which emoji need, stay.
func hidden(r rune) bool {
	switch {
	case r == 0x061C, r == 0x200E, r == 0x200F: // ALM, LRM, RLM
		return true
	case r >= 0x2028 && r <= 0x202E: // separators, embeddings, overrides
		return true
	case r >= 0x2066 && r <= 0x206F: // isolates, deprecated format controls
		return true
	}

	return false
}

// escapeLen returns how many bytes of p, which follows an ESC, belong to its
// escape sequence.
func escapeLen(p []byte) int {
	if len(p) == 0 {
		return 0
	}

	switch b := p[0]; {
	case b == '[':
		return 1 + controlSeqLen(p[1:])
	case b == ']' || b == 'P' || b == 'X' || b == '^' || b == '_':
		return 1 + stringLen(p[1:])
	case b >= 0x20 && b <= 0x2F:
		// Intermediate bytes, then one final byte (ESC ( B and the like).
		n := 0
		for n < len(p) && p[n] >= 0x20 && p[n] <= 0x2F {
			n++
		}

		if n < len(p) && p[n] >= 0x30 && p[n] <= 0x7E {
			n++
		}

		return n
	case b >= 0x30 && b <= 0x7E:
		// A two-byte sequence such as ESC c (reset) or ESC 7.
		return 1
	}

	return 0
}

// controlSeqLen returns how many bytes of p, which follows a CSI, belong to
// its control sequence: parameter and intermediate bytes, then a final byte.
// A byte that cannot be part of it ends the sequence without being taken.
func controlSeqLen(p []byte) int {
	for n, b := range p {
		switch {
		case b >= 0x40 && b <= 0x7E:
			return n + 1
		case b < 0x20 || b >= 0x7F:
			return n
		}
	}

	return len(p)
}

// stringLen returns how many bytes of p, which follows a string introducer
// (OSC, DCS, SOS, PM, APC), belong to the string and its terminator: BEL,
// ESC \ or the C1 ST. An unterminated string runs to the end of the line.
func stringLen(p []byte) int {
	for n := 0; n < len(p); n++ {
		switch {
		case p[n] == 0x07:
			return n + 1
		case p[n] == 0x1B && n+1 < len(p) && p[n+1] == '\\':
			return n + 2
		case p[n] == 0xC2 && n+1 < len(p) && p[n+1] == 0x9C:
			return n + 2
		}
	}

	return len(p)
}
