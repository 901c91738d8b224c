// Package term keeps a terminal as it was around a program that changes
// it (QEMU, and the firmware and guest that write to its console), and
// keeps terminal escape codes out of output that is not a terminal.
package term

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// Reset undoes what SeaBIOS and a guest's console leave behind: ESC[?7h
// turns line wrapping on again (SeaBIOS turns it off with ESC[?7l),
// ESC[?25h shows the cursor, ESC[0m resets colours and attributes.
const Reset = "\x1b[?7h\x1b[?25h\x1b[0m"

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// Saved is a terminal's state to go back to.
type Saved struct {
	f       *os.File
	termios *unix.Termios
}

// Save records f's terminal settings.
func Save(f *os.File) (*Saved, error) {
	t, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("term: saving %s: %w", f.Name(), err)
	}
	return &Saved{f: f, termios: t}, nil
}

// Restore puts the settings back (however the program that changed them
// ended) and sends Reset to w (the terminal's output side).
func (s *Saved) Restore(w io.Writer) error {
	err := unix.IoctlSetTermios(int(s.f.Fd()), unix.TCSETSW, s.termios)
	if _, werr := io.WriteString(w, Reset); err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("term: restoring %s: %w", s.f.Name(), err)
	}
	return nil
}

// Stripper is a writer that passes text on without terminal escape
// sequences (CSI "ESC [ ... final", OSC "ESC ] ... BEL or ESC \", and
// two- and three-byte ESC sequences) and with CRLF line ends made LF. A
// sequence may be split across writes.
type Stripper struct {
	W     io.Writer
	state int
	cr    bool // a CR was held back
	buf   []byte
}

// Stripper states.
const (
	stText   = iota
	stEsc    // after ESC
	stCSI    // inside ESC [
	stOSC    // inside ESC ]
	stOSCEsc // ESC inside OSC
	stInter  // ESC followed by intermediate bytes (e.g. ESC ( B)
)

// Write implements io.Writer; it reports len(p) when the underlying
// writer took everything.
func (s *Stripper) Write(p []byte) (int, error) {
	s.buf = s.buf[:0]
	for _, c := range p {
		switch s.state {
		case stText:
			// CRs are held back until the next text byte: CRs before
			// an LF (escape sequences between them or not) go.
			switch c {
			case 0x1b:
				s.state = stEsc
			case '\r':
				s.cr = true
			case '\n':
				s.cr = false
				s.buf = append(s.buf, c)
			default:
				if s.cr {
					s.cr = false
					s.buf = append(s.buf, '\r')
				}
				s.buf = append(s.buf, c)
			}
		case stEsc:
			switch {
			case c == '[':
				s.state = stCSI
			case c == ']':
				s.state = stOSC
			case c >= 0x20 && c <= 0x2f:
				s.state = stInter
			case c == 0x1b:
				// ESC ESC: the first one was alone.
			default:
				s.state = stText
			}
		case stCSI:
			if c >= 0x40 && c <= 0x7e {
				s.state = stText
			} else if c < 0x20 && c != 0x1b {
				s.state = stText // a control byte ends a broken sequence
			} else if c == 0x1b {
				s.state = stEsc
			}
		case stOSC:
			if c == 0x07 {
				s.state = stText
			} else if c == 0x1b {
				s.state = stOSCEsc
			}
		case stOSCEsc:
			if c == '\\' {
				s.state = stText
			} else {
				s.state = stOSC
			}
		case stInter:
			if c < 0x20 || c > 0x2f {
				s.state = stText
			}
		}
	}
	if len(s.buf) > 0 {
		if _, err := s.W.Write(s.buf); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes a CR held back at the end of the last Write.
func (s *Stripper) Flush() error {
	if s.cr {
		s.cr = false
		_, err := s.W.Write([]byte{'\r'})
		return err
	}
	return nil
}
