package logproto

// plainBlocks returns the index of the first byte of b that is not plain
// if there is one in its whole blocks of 16 bytes, else the length of those
// blocks (len(b) &^ 15). SSE2, which every amd64 processor has.
//
//go:noescape
func plainBlocks(b []byte) int
