package redis

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// Reply is one RESP2 reply.
type Reply struct {
	Kind  byte // '+', '-', ':', '$', '*'
	Str   string
	Int   int64
	Null  bool
	Elems []Reply
}

// Limits of what ReadReply accepts from a server.
const (
	maxBulk  = 64 << 20
	maxElems = 1 << 20
	maxDepth = 8
	maxLine  = 64 << 10
)

// ErrProtocol is a reply that is not RESP.
var ErrProtocol = errors.New("redis: protocol error")

// ReadReply reads one reply.
func ReadReply(r *bufio.Reader) (Reply, error) { return readReply(r, 0) }

func readLine(r *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		part, err := r.ReadSlice('\n')
		line = append(line, part...)
		if err == nil {
			break
		}
		if err != bufio.ErrBufferFull {
			return nil, err
		}
		if len(line) > maxLine {
			return nil, fmt.Errorf("%w: line over %d bytes", ErrProtocol, maxLine)
		}
	}
	if len(line) < 3 || line[len(line)-2] != '\r' {
		return nil, fmt.Errorf("%w: line %q", ErrProtocol, line)
	}
	return line[:len(line)-2], nil
}

func readReply(r *bufio.Reader, depth int) (Reply, error) {
	line, err := readLine(r)
	if err != nil {
		return Reply{}, err
	}
	rep := Reply{Kind: line[0]}
	rest := string(line[1:])
	switch rep.Kind {
	case '+', '-':
		rep.Str = rest
	case ':':
		if rep.Int, err = strconv.ParseInt(rest, 10, 64); err != nil {
			return Reply{}, fmt.Errorf("%w: integer %q", ErrProtocol, rest)
		}
	case '$':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 || n > maxBulk {
			return Reply{}, fmt.Errorf("%w: bulk length %q", ErrProtocol, rest)
		}
		if n == -1 {
			rep.Null = true
			return rep, nil
		}
		// Grown as bytes arrive: a length alone allocates nothing.
		var buf bytes.Buffer
		if _, err := io.CopyN(&buf, r, int64(n)+2); err != nil {
			return Reply{}, err
		}
		b := buf.Bytes()
		if b[n] != '\r' || b[n+1] != '\n' {
			return Reply{}, fmt.Errorf("%w: bulk string not ended by CRLF", ErrProtocol)
		}
		rep.Str = string(b[:n])
	case '*':
		n, err := strconv.Atoi(rest)
		if err != nil || n < -1 || n > maxElems {
			return Reply{}, fmt.Errorf("%w: array length %q", ErrProtocol, rest)
		}
		if n == -1 {
			rep.Null = true
			return rep, nil
		}
		if depth >= maxDepth {
			return Reply{}, fmt.Errorf("%w: arrays nested deeper than %d", ErrProtocol, maxDepth)
		}
		rep.Elems = make([]Reply, 0, min(n, 1024))
		for range n {
			e, err := readReply(r, depth+1)
			if err != nil {
				return Reply{}, err
			}
			rep.Elems = append(rep.Elems, e)
		}
	default:
		return Reply{}, fmt.Errorf("%w: reply type %q", ErrProtocol, rep.Kind)
	}
	return rep, nil
}

// AppendCommand appends a command as a RESP array of bulk strings.
func AppendCommand(dst []byte, args ...[]byte) []byte {
	dst = append(dst, '*')
	dst = strconv.AppendInt(dst, int64(len(args)), 10)
	dst = append(dst, '\r', '\n')
	for _, a := range args {
		dst = append(dst, '$')
		dst = strconv.AppendInt(dst, int64(len(a)), 10)
		dst = append(dst, '\r', '\n')
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}
