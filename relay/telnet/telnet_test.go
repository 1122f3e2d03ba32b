package telnet

import (
	"bytes"
	"strings"
	"testing"
)

func TestFeed(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		data  string
		reply string
	}{
		{name: "plain", in: "hello\r\n", data: "hello\r\n"},
		{name: "escaped IAC", in: "a\xff\xffb", data: "a\xffb"},
		{name: "DO refused", in: "a\xff\xfd\x01b", data: "ab", reply: "\xff\xfc\x01"},
		{name: "WILL refused", in: "\xff\xfb\x1fx", data: "x", reply: "\xff\xfe\x1f"},
		{name: "WONT not answered", in: "\xff\xfc\x01x", data: "x"},
		{name: "DONT not answered", in: "\xff\xfe\x01x", data: "x"},
		{name: "two-byte commands", in: "a\xff\xf4b\xff\xf6c\xff\xf1d", data: "abcd"},
		{name: "subnegotiation", in: "a\xff\xfa\x18\x00VT100\xff\xf0b", data: "ab"},
		{name: "IAC IAC inside subnegotiation",
			in: "a\xff\xfa\x18\xff\xff\xff\xf0b", data: "ab"},
		{name: "stray byte after IAC in subnegotiation",
			in: "\xff\xfa\x18\xff\x01more\xff\xf0b", data: "b"},
		{name: "unterminated subnegotiation", in: "a\xff\xfa\x18hello", data: "a"},
		{name: "subnegotiation too long to be one",
			in: "a\xff\xfa" + strings.Repeat("x", MaxSub) + "bc", data: "abc"},
		{name: "long subnegotiation, escapes counted",
			in: "\xff\xfa" + strings.Repeat("\xff\xff", MaxSub/2-1) + "\xff\xf0d", data: "d"},
		{name: "timing mark", in: "\xff\xf4\xff\xfd\x06", reply: "\xff\xfc\x06"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, and split at every byte.
			for _, step := range []int{len(tt.in), 1} {
				var f Filter
				var data, reply []byte
				for i := 0; i < len(tt.in); i += step {
					data, reply = f.Feed(data, reply, []byte(tt.in[i:min(i+step, len(tt.in))]))
				}

				if string(data) != tt.data || string(reply) != tt.reply {
					t.Errorf("Feed(%q) in steps of %d: got data %q, reply %q, want %q, %q",
						tt.in, step, data, reply, tt.data, tt.reply)
				}
			}
		})
	}
}

// FuzzFeed checks that splitting the input anywhere changes nothing, and
// that data never grows beyond the input nor carries a command.
func FuzzFeed(f *testing.F) {
	f.Add([]byte("hello\xff\xfd\x01\xff\xfa\x18\x00x\xff\xf0\xff\xff"), 3)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		var whole Filter
		data, reply := whole.Feed(nil, nil, in)

		var split Filter
		cut = min(max(cut, 0), len(in))
		d2, r2 := split.Feed(nil, nil, in[:cut])
		d2, r2 = split.Feed(d2, r2, in[cut:])

		if !bytes.Equal(data, d2) || !bytes.Equal(reply, r2) {
			t.Fatalf("Feed(%q) split at %d: got %q, %q, want %q, %q as whole", in, cut, d2, r2, data, reply)
		}

		if len(data) > len(in) || len(reply) > 3*len(in) {
			t.Fatalf("Feed(%q): got %d data bytes, %d reply bytes, want fewer", in, len(data), len(reply))
		}
	})
}
