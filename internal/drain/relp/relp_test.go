package relp

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestReadFrame(t *testing.T) {
	offer := "200 OK\nrelp_version=0\nrelp_software=librelp,1.11.0,http://librelp.adiscon.com\ncommands=syslog"
	in := "1 rsp 6 200 OK\n" + string(AppendFrame(nil, 2, "rsp", []byte(offer))) + "0 serverclose 0\n"
	br := bufio.NewReader(strings.NewReader(in))
	f, err := ReadFrame(br)
	if err != nil || f.Txnr != 1 || f.Command != "rsp" || string(f.Data) != "200 OK" {
		t.Fatalf("%+v %v", f, err)
	}
	f, err = ReadFrame(br)
	if err != nil || f.Txnr != 2 {
		t.Fatalf("%+v %v", f, err)
	}
	if code, text, err := Response(f.Data); code != 200 || text != "OK" || err != nil {
		t.Fatalf("%d %q %v", code, text, err)
	}
	f, err = ReadFrame(br)
	if err != nil || f.Txnr != 0 || f.Command != "serverclose" || f.Data != nil {
		t.Fatalf("%+v %v", f, err)
	}
	for _, bad := range []string{"x rsp 0\n", "1 rsp 5 abc\n", "1 rsp 3 abc", "1 r$p 0\n", "1 rsp 99999999999 x\n", "1  rsp 0\n", "1 rsp 1\n", "1 rsp 2 ab!"} {
		if _, err := ReadFrame(bufio.NewReader(strings.NewReader(bad))); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestAppendFrame(t *testing.T) {
	if got := string(AppendFrame(nil, 7, "syslog", []byte("a\nb"))); got != "7 syslog 3 a\nb\n" {
		t.Fatal(got)
	}
	if got := string(AppendFrame(nil, 8, "close", nil)); got != "8 close 0\n" {
		t.Fatal(got)
	}
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte("1 rsp 6 200 OK\n"))
	f.Add([]byte("0 serverclose 0\n"))
	f.Add([]byte("12 rsp 3 5"))
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ReadFrame(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		// What parses is written back the same way.
		out := AppendFrame(nil, fr.Txnr, fr.Command, fr.Data)
		if !bytes.HasPrefix(b, out) && len(fr.Data) > 0 {
			t.Fatalf("%q parsed as %+v, written %q", b, fr, out)
		}
		Response(fr.Data)
	})
}
