package kmsg

import (
	"bytes"
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		in                string
		prio              uint32
		seq, usec         uint64
		flags, extra      string
		text              string
		dict              []string
		tail              string
		unterminated, bad bool
	}{
		{in: "6,339,5140900,-;NET: Registered protocol family 10\n", prio: 6, seq: 339, usec: 5140900, flags: "-", text: "NET: Registered protocol family 10"},
		{in: "7,160,424069,-;pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n",
			prio: 7, seq: 160, usec: 424069, flags: "-", text: "pci_root PNP0A03:00: host bridge window [io  0x0000-0x0cf7] (ignored)",
			dict: []string{"SUBSYSTEM=acpi", "DEVICE=+acpi:PNP0A03:00"}},
		{in: "4,5,6,c,caller=T42;frag\n", prio: 4, seq: 5, usec: 6, flags: "c", extra: "caller=T42", text: "frag"},
		{in: "4,5,6,-,a,b;x;y\n", prio: 4, seq: 5, usec: 6, flags: "-", extra: "a,b", text: "x;y"},
		{in: "12,18446744073709551615,0,-;max seq\n", prio: 12, seq: 1<<64 - 1, flags: "-", text: "max seq"},
		{in: "2043,1,2,-;big facility\n", prio: 2043, seq: 1, usec: 2, flags: "-", text: "big facility"},
		{in: "6,1,2,-;\n", prio: 6, seq: 1, usec: 2, flags: "-", text: ""},
		{in: "6,1,2,-;no newline", prio: 6, seq: 1, usec: 2, flags: "-", text: "no newline", unterminated: true},
		{in: "6,1,2,-;text\n KEY=v\ntrailing junk", prio: 6, seq: 1, usec: 2, flags: "-", text: "text", dict: []string{"KEY=v"}, tail: "trailing junk"},
		{in: "6,1,2,;empty flags\n", prio: 6, seq: 1, usec: 2, flags: "", text: "empty flags"},
		// Malformed.
		{in: "", bad: true},
		{in: "6,1,2;three fields\n", bad: true},
		{in: "x,1,2,-;prio\n", bad: true},
		{in: "6,18446744073709551616,2,-;seq overflows\n", bad: true},
		{in: "6,123456789012345678901,2,-;seq too long\n", bad: true},
		{in: "4294967296,1,2,-;prio over 32 bits\n", bad: true},
		{in: "6,1,,-;empty usec\n", bad: true},
		{in: "6,1\n,2,-;newline in header\n", bad: true},
		{in: "no header at all\n", bad: true},
		{in: "0,0,00,;leading zero\n", bad: true},
		{in: "\x00\xff\xfe;", bad: true},
	}
	for _, c := range cases {
		r, err := Parse([]byte(c.in))
		if c.bad {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("Parse(%q): err %v, want ErrMalformed", c.in, err)
			}
			if string(r.Raw) != c.in || string(r.Text) != string(bytes.TrimSuffix([]byte(c.in), []byte("\n"))) {
				t.Errorf("Parse(%q): malformed record not kept: raw %q text %q", c.in, r.Raw, r.Text)
			}
			continue
		}
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if r.Prio != c.prio || r.Seq != c.seq || r.Usec != c.usec || string(r.Flags) != c.flags ||
			string(r.Extra) != c.extra || string(r.Text) != c.text || string(r.Tail) != c.tail || r.Unterminated != c.unterminated {
			t.Errorf("Parse(%q) = prio %d seq %d usec %d flags %q extra %q text %q tail %q unterminated %v", c.in,
				r.Prio, r.Seq, r.Usec, r.Flags, r.Extra, r.Text, r.Tail, r.Unterminated)
		}
		if len(r.Dict) != len(c.dict) {
			t.Errorf("Parse(%q): dict %q, want %q", c.in, r.Dict, c.dict)
		} else {
			for i := range c.dict {
				if string(r.Dict[i]) != c.dict[i] {
					t.Errorf("Parse(%q): dict[%d] %q, want %q", c.in, i, r.Dict[i], c.dict[i])
				}
			}
		}
		if got := r.AppendRaw(nil); string(got) != c.in {
			t.Errorf("Parse(%q).AppendRaw = %q", c.in, got)
		}
	}
}

func TestParseLevelFacility(t *testing.T) {
	r, err := Parse([]byte("11,1,2,-;x\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Facility() != 1 || r.Level() != 3 {
		t.Fatalf("prio 11: facility %d level %d, want 1 and 3", r.Facility(), r.Level())
	}
}

func TestUnescape(t *testing.T) {
	cases := []struct{ in, want string }{
		{`plain`, `plain`},
		{`back\x5cslash`, `back\slash`},
		{`utf8 \xe2\x80\x99 quote`, "utf8 \u2019 quote"},
		{`tab\x09here`, "tab\there"},
		{`newline\x0astays`, `newline\x0astays`},
		{`nul\x00stays`, `nul\x00stays`},
		{`del\x7fstays`, `del\x7fstays`},
		{`upper\x5C`, `upper\`},
		{`bad\xzz`, `bad\xzz`},
		{`short\x5`, `short\x5`},
		{`end\`, `end\`},
		{`\x41\x42`, `AB`},
		{`\\x41`, `\A`},
	}
	for _, c := range cases {
		if got := Unescape(nil, []byte(c.in)); string(got) != c.want {
			t.Errorf("Unescape(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEscapeUnescape(t *testing.T) {
	in := []byte("a\\b\xe2\x80\x99\tc")
	esc := Escape(nil, in)
	if bytes.IndexFunc(esc, func(r rune) bool { return r < 0x20 || r >= 0x7f }) >= 0 {
		t.Fatalf("Escape left non-printable bytes: %q", esc)
	}
	if got := Unescape(nil, esc); !bytes.Equal(got, in) {
		t.Fatalf("Unescape(Escape(%q)) = %q", in, got)
	}
}

// FuzzParse: no panic; an accepted record is rebuilt byte for byte from
// its fields; a rejected one is kept whole; Unescape never loses a byte
// of a text without backslashes and never grows one.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"6,339,5140900,-;NET: Registered protocol family 10\n",
		"7,160,424069,-;pci_root PNP0A03:00: host bridge\n SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A03:00\n",
		"4,5,6,c,caller=T42;frag\\x0a\\x5c\\xzz\\x\n",
		"12,18446744073709551615,0,-;max seq\n",
		"12,99999999999999999999999,0,-;huge seq\n",
		"6,1,2",
		"6,1,2,-",
		"6,1,2,-;",
		"\x00\xff,\x01;\n \n",
		"6,1,2,-;x\n \n KEY\n K=V\n=\n",
		"6,1,2,-;x\nnot dict\n K=V\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		in := append([]byte(nil), b...)
		r, err := Parse(b)
		if !bytes.Equal(b, in) {
			t.Fatalf("Parse modified its input")
		}
		if !bytes.Equal(r.Raw, in) {
			t.Fatalf("Raw %q, want the input %q", r.Raw, in)
		}
		if err != nil {
			if !bytes.Equal(r.Text, bytes.TrimSuffix(in, []byte{'\n'})) {
				t.Fatalf("rejected record %q: text %q does not keep it", in, r.Text)
			}
			return
		}
		if got := r.AppendRaw(nil); !bytes.Equal(got, in) {
			t.Fatalf("AppendRaw = %q, want %q", got, in)
		}
		u := Unescape(nil, r.Text)
		if len(u) > len(r.Text) {
			t.Fatalf("Unescape grew %q to %q", r.Text, u)
		}
		if bytes.IndexByte(r.Text, '\\') < 0 && !bytes.Equal(u, r.Text) {
			t.Fatalf("Unescape changed %q (no escapes) to %q", r.Text, u)
		}
		var sd []byte
		sd = AppendSD(sd, &r)
		if seq, ok := SeqFromSD(sd); !ok || seq != r.Seq {
			t.Fatalf("SD %q: seq %d %v, want %d", sd, seq, ok, r.Seq)
		}
	})
}
