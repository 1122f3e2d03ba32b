package relay

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// frames runs a framer with the given limit over the chunks and returns the lines
// it delivers, with "|cut" after each cut one, and the unfinished rest.
func frames(limit int, chunks ...string) (lines []string, rest string) {
	f := framer{max: limit}
	for _, c := range chunks {
		p := []byte(c)
		for len(p) > 0 {
			line, n, kind := f.next(p)
			p = p[n:]
			switch kind {
			case frameLine:
				lines = append(lines, string(line))
			case frameCut:
				lines = append(lines, string(line)+"|cut")
			}
		}
	}

	return lines, string(f.rest())
}

func TestFramer(t *testing.T) {
	tests := []struct {
		name   string
		max    int
		chunks []string
		lines  []string
		rest   string
	}{
		{name: "LF", chunks: []string{"a\nb\n"}, lines: []string{"a", "b"}},
		{name: "CRLF", chunks: []string{"a\r\nb\r\n"}, lines: []string{"a", "b"}},
		{name: "CR NUL", chunks: []string{"a\r\x00b\r\x00"}, lines: []string{"a", "b"}},
		{name: "bare CR", chunks: []string{"a\rb\r"}, lines: []string{"a", "b"}},
		{name: "CRLF split", chunks: []string{"a\r", "\nb\n"}, lines: []string{"a", "b"}},
		{name: "CR NUL split", chunks: []string{"a\r", "\x00b\n"}, lines: []string{"a", "b"}},
		{name: "empty lines", chunks: []string{"\n\r\n\n"}, lines: []string{"", "", ""}},
		{name: "in pieces", chunks: []string{"hel", "lo\n"}, lines: []string{"hello"}},
		{name: "unfinished", chunks: []string{"a\nbc"}, lines: []string{"a"}, rest: "bc"},
		{name: "at the limit", max: 4, chunks: []string{"abcd\n"}, lines: []string{"abcd"}},
		{name: "at the limit with CRLF", max: 4, chunks: []string{"abcd\r\nx\n"},
			lines: []string{"abcd", "x"}},
		{name: "over the limit", max: 4, chunks: []string{"abcdefgh\nx\n"},
			lines: []string{"abcd|cut", "x"}},
		{name: "far over the limit in pieces", max: 4,
			chunks: []string{"abcdef", "ghijkl", "mn\r", "\nx\n"},
			lines:  []string{"abcd|cut", "x"}},
		{name: "cut before a split character", max: 4, chunks: []string{"abcé\n"},
			lines: []string{"abc|cut"}},
		{name: "cut after a whole character", max: 4, chunks: []string{"abé\n"},
			lines: []string{"abé"}},
		{name: "cut inside a 4-byte character", max: 5, chunks: []string{"ab😀c\n"},
			lines: []string{"ab|cut"}},
		{name: "cut in invalid bytes", max: 4, chunks: []string{"\x80\x80\x80\x80\x80\n"},
			lines: []string{"\x80\x80\x80\x80|cut"}},
		{name: "rest after a cut is dropped", max: 4, chunks: []string{"abcdefg"},
			lines: []string{"abcd|cut"}},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.max
			if limit == 0 {
				limit = 100
			}

			lines, rest := frames(limit, tt.chunks...)
			if strings.Join(lines, "/") != strings.Join(tt.lines, "/") || rest != tt.rest {
				t.Errorf("framing %q: got %q, rest %q, want %q, rest %q",
					tt.chunks, lines, rest, tt.lines, tt.rest)
			}
		})
	}
}

// FuzzFramer checks that where the input is split does not matter, that no
// line is longer than the limit or holds a line end, and that a cut never
// splits a valid character.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("hello\r\nworld\r\x00é😀\rlong line here\n"), 5, uint8(8))
	f.Fuzz(func(t *testing.T, in []byte, at int, size uint8) {
		limit := int(size%64) + 4
		at = min(max(at, 0), len(in))
		whole, wholeRest := frames(limit, string(in))
		split, splitRest := frames(limit, string(in[:at]), string(in[at:]))
		if strings.Join(whole, "\n") != strings.Join(split, "\n") || wholeRest != splitRest {
			t.Fatalf("framing %q split at %d: got %q, want %q as whole", in, at, split, whole)
		}

		for _, l := range whole {
			l, cut := strings.CutSuffix(l, "|cut")
			if len(l) > limit || strings.ContainsAny(l, "\r\n") {
				t.Fatalf("framing %q (limit %d): got line %q, want no line end, within the limit",
					in, limit, l)
			}

			if cut && utf8.ValidString(string(in)) && !utf8.ValidString(l) {
				t.Fatalf("framing valid %q (limit %d): got %q, want no character cut", in, limit, l)
			}
		}

		if bytes.ContainsAny([]byte(wholeRest), "\r\n") {
			t.Fatalf("framing %q: got rest %q, want no line end in it", in, wholeRest)
		}
	})
}
