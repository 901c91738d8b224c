package logproto

import (
	"bufio"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func read(s string) (Request, error) { return ReadRequest(bufio.NewReader(strings.NewReader(s))) }

func TestLegacyRequests(t *testing.T) {
	for b, mode := range []string{ModeDump, ModeFollow, ModeDumpFollow} {
		r, err := read(string([]byte{byte(b)}))
		if err != nil || !r.Legacy || r.Mode != mode {
			t.Errorf("byte %d: %+v %v", b, r, err)
		}
		wire, err := r.Marshal()
		if err != nil || len(wire) != 1 || wire[0] != byte(b) {
			t.Errorf("marshal %+v = %v %v", r, wire, err)
		}
	}
}

func TestExtendedRequests(t *testing.T) {
	sev := 4
	r, err := read(`{"mode":"dump+follow","after":{"instance":"i1","seq":9},"sources":["onboot.*"],"exclude":["logwrite*"],"severity":4}` + "\n")
	if err != nil {
		t.Fatal(err)
	}
	want := Request{Mode: ModeDumpFollow, After: &Cursor{Instance: "i1", Seq: 9}, Sources: []string{"onboot.*"},
		Exclude: []string{"logwrite*"}, Severity: &sev}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v", r)
	}
	wire, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := read(string(wire))
	if err != nil || !reflect.DeepEqual(back, r) {
		t.Errorf("round trip: %+v %v", back, err)
	}
	if !r.Match([]byte("onboot.001-x.out"), 3) || r.Match([]byte("onboot.001-x.out"), 5) ||
		r.Match([]byte("svc.out"), 0) {
		t.Error("Match with sources and severity wrong")
	}
	ex := Request{Mode: ModeDump, Exclude: []string{"logwrite*"}}
	if ex.Match([]byte("logwrite.out"), 6) || !ex.Match([]byte("svc"), 6) {
		t.Error("Match with exclude wrong")
	}
	if (&Request{Mode: ModeDump}).Filtered() || !ex.Filtered() {
		t.Error("Filtered wrong")
	}
}

func TestBadRequests(t *testing.T) {
	for _, in := range []string{
		"x", "\x03", "{", `{"mode":"dump"}`, // no newline
		`{"mode":"tail"}` + "\n", `{}` + "\n", `{"mode":"dump","bogus":1}` + "\n",
		`{"mode":"dump","tail":-1}` + "\n", `{"mode":"dump","tail":3,"after":{"instance":"a","seq":1}}` + "\n",
		`{"mode":"follow","tail":3}` + "\n", `{"mode":"dump","severity":8}` + "\n",
		`{"mode":"dump","sources":["["]}` + "\n", `{"mode":"dump"} trailing` + "\n",
		"{" + strings.Repeat(" ", MaxRequestLen) + "}\n", `{"mode":"dump"` + "\n",
	} {
		if _, err := read(in); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%.40q: %v, want a bad request", in, err)
		}
	}
	if _, err := read(""); err == nil || errors.Is(err, ErrBadRequest) {
		t.Errorf("empty input: %v", err)
	}
}

func FuzzReadRequest(f *testing.F) {
	for _, s := range []string{"\x00", "\x02", `{"mode":"dump","tail":5}` + "\n",
		`{"mode":"dump+follow","after":{"instance":"x","seq":3},"sources":["a*","b"],"severity":2}` + "\n", "{\n", "garbage"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := read(s)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil && !r.Legacy {
			t.Fatalf("accepted an invalid request %q: %v", s, err)
		}
		wire, err := r.Marshal()
		if err != nil {
			t.Fatalf("cannot marshal accepted request %+v: %v", r, err)
		}
		back, err := read(string(wire))
		if err != nil || !reflect.DeepEqual(back, r) {
			t.Fatalf("round trip of %q: %+v, %v", s, back, err)
		}
		r.Match([]byte(s), 3)
	})
}
