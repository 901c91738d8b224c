package term

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func strip(t *testing.T, in string) string {
	t.Helper()
	var out bytes.Buffer
	s := &Stripper{W: &out}
	if n, err := s.Write([]byte(in)); err != nil || n != len(in) {
		t.Fatalf("write: %d, %v", n, err)
	}
	s.Flush()
	return out.String()
}

func TestStripper(t *testing.T) {
	for in, want := range map[string]string{
		// What SeaBIOS and the guest console send around a boot.
		"\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS (version 1.16)\r\n": "SeaBIOS (version 1.16)\n",
		"a\x1b[1;31mred\x1b[0m b\r\n":                           "ared b\n",
		"title\x1b]0;hello\x07 and \x1b]2;x\x1b\\ok\n":          "title and ok\n",
		"charset\x1b(B ok":                                      "charset ok",
		"keep\rCR\r":                                            "keep\rCR\r",
		"\x1b\x1b[0mx":                                          "x",
		"broken\x1b[12\nnext":                                   "brokennext",
		"plain text\n":                                          "plain text\n",
	} {
		if got := strip(t, in); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// FuzzStripper: no ESC survives, and how the input is split into writes
// does not change the output.
func FuzzStripper(f *testing.F) {
	f.Add([]byte("\x1bc\x1b[?7l\x1b[2J\x1b[0mSeaBIOS\r\n"), 3)
	f.Add([]byte("a\x1b]0;t\x07b\x1b(Bc\r\r\n"), 1)
	f.Fuzz(func(t *testing.T, in []byte, split int) {
		var one, two bytes.Buffer
		s1 := &Stripper{W: &one}
		s1.Write(in)
		s1.Flush()
		if bytes.IndexByte(one.Bytes(), 0x1b) >= 0 {
			t.Fatalf("ESC left in %q -> %q", in, one.Bytes())
		}
		if bytes.Contains(one.Bytes(), []byte("\r\n")) {
			t.Fatalf("CRLF left in %q -> %q", in, one.Bytes())
		}
		if len(in) > 0 {
			split = (split%len(in) + len(in)) % len(in)
		} else {
			split = 0
		}
		s2 := &Stripper{W: &two}
		s2.Write(in[:split])
		s2.Write(in[split:])
		s2.Flush()
		if !bytes.Equal(one.Bytes(), two.Bytes()) {
			t.Fatalf("split at %d changes %q: %q vs %q", split, in, one.Bytes(), two.Bytes())
		}
	})
}

// TestSaveRestore: on a real pseudo-terminal, a program that puts it in
// raw mode, turns wrapping off and is killed leaves it as it was once
// Restore has run.
func TestSaveRestore(t *testing.T) {
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	defer ptm.Close()
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+itoa(int(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer pts.Close()
	// Drain what is written to the terminal.
	var mu = make(chan struct{})
	var screen bytes.Buffer
	go func() {
		defer close(mu)
		b := make([]byte, 4096)
		for {
			n, err := ptm.Read(b)
			screen.Write(b[:n])
			if err != nil || bytes.Contains(screen.Bytes(), []byte(Reset)) {
				return
			}
		}
	}()
	if !IsTerminal(pts) {
		t.Fatal("pts is not a terminal")
	}
	saved, err := Save(pts)
	if err != nil {
		t.Fatal(err)
	}
	before := *saved.termios
	// A program like QEMU: raw mode, wrapping off, then killed.
	cmd := exec.Command("sh", "-c", "stty raw -echo; printf '\\033[?7l'; kill -9 $$")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, pts, pts
	cmd.Run()
	raw, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&unix.ICANON != 0 {
		t.Fatalf("stty raw had no effect (lflag %#x): the test proves nothing", raw.Lflag)
	}
	if err := saved.Restore(pts); err != nil {
		t.Fatal(err)
	}
	after, err := unix.IoctlGetTermios(int(pts.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Iflag != before.Iflag || after.Oflag != before.Oflag {
		t.Errorf("terminal not restored: lflag %#x iflag %#x oflag %#x, want %#x %#x %#x",
			after.Lflag, after.Iflag, after.Oflag, before.Lflag, before.Iflag, before.Oflag)
	}
	select {
	case <-mu:
	case <-time.After(30 * time.Second):
		t.Fatal("no reset sequence on the terminal within 30 s")
	}
	if s := screen.String(); !strings.Contains(s, "\x1b[?7l") || !strings.HasSuffix(s, Reset) {
		t.Errorf("terminal output %q: want wrapping turned off and then the reset last", s)
	}
	if IsTerminal(os.NewFile(uintptr(mustPipe(t)), "pipe")) {
		t.Error("a pipe taken for a terminal")
	}
}

func mustPipe(t *testing.T) int {
	var p [2]int
	if err := unix.Pipe(p[:]); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p[0]
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}
