package relay

import (
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestClean(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "hello, world", "hello, world"},
		{"unicode", "héllo 😀 日本", "héllo 😀 日本"},
		{"tab", "a\tb", "a b"},
		{"invalid UTF-8", "a\xffb\xc3", "a\uFFFDb\uFFFD"},
		{"IAC IAC byte", "a\xffb", "a\uFFFDb"},
		{"C0 controls", "a\x00\x01\x07\x0bb\x1cc", "abc"},
		{"bare CR", "a\rb", "ab"},
		{"C1 controls", "a\u0085b\u0080c", "abc"},
		{"backspace", "helo\bo", "helo"[:3] + "o"},
		{"DEL erases a character", "hé\x7fe", "he"},
		{"backspace at start", "\b\ba", "a"},
		{"kill line", "oops\x15fine", "fine"},
		{"CSI", "a\x1b[2J\x1b[1;31mred\x1b[0m", "ared"},
		{"CSI with intermediate", "a\x1b[1 qb", "ab"},
		{"CSI broken by a control", "a\x1b[12\nb", "ab"},
		{"OSC with BEL", "a\x1b]0;pwned\x07b", "ab"},
		{"OSC with ST", "a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b", "alinkb"},
		{"unterminated OSC", "a\x1b]0;title", "a"},
		{"DCS", "a\x1bPq#0\x1b\\b", "ab"},
		{"charset", "a\x1b(Bb", "ab"},
		{"reset", "a\x1bcb", "ab"},
		{"ESC alone at end", "a\x1b", "a"},
		{"ESC then non-ASCII", "a\x1bé", "aé"},
		{"C1 CSI", "a\u009b2Jb", "ab"},
		{"C1 OSC", "a\u009d0;t\u009cb", "ab"},
		{"bidi override", "a\u202eb\u2066c\u2069", "abc"},
		{"line separator", "a\u2028b", "ab"},
		{"bidi marks", "a\u200eb\u200fc\u061cd", "abcd"},
		{"deprecated format controls", "a\u206ab\u206fc", "abc"},
		{"zero width joiner kept", "👩\u200d💻", "👩\u200d💻"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(clean(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("clean(%q): got %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// FuzzClean checks that what clean lets through is valid UTF-8 with no
// control character of any kind.
func FuzzClean(f *testing.F) {
	f.Add([]byte("a\x1b[31mb\x1b]0;t\x07\u009b1m\xff\b\x15\u202e"))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := clean([]byte("prefix"), in)
		if string(out[:6]) != "prefix" {
			t.Fatalf("clean(%q): got %q, want what was before it kept", in, out)
		}

		if !utf8.Valid(out) {
			t.Fatalf("clean(%q): got %q, want valid UTF-8", in, out)
		}

		for _, r := range string(out[6:]) {
			if unicode.IsControl(r) || hidden(r) {
				t.Fatalf("clean(%q): got %q, holding %U, want no control", in, out, r)
			}
		}
	})
}
