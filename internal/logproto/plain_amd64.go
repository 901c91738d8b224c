package logproto

import "golang.org/x/sys/cpu"

// plainBlocks returns the index of the first byte of b that is not plain
// if there is one in its whole blocks of 16 bytes, else the length of those
// blocks (len(b) &^ 15): 32 bytes at a time with AVX2 where the processor
// has it, 16 with SSE2, which every amd64 processor has.
func plainBlocks(b []byte) int {
	if hasAVX2 {
		return plainBlocksAVX2(b)
	}
	return plainBlocksSSE2(b)
}

var hasAVX2 = cpu.X86.HasAVX2

//go:noescape
func plainBlocksSSE2(b []byte) int

//go:noescape
func plainBlocksAVX2(b []byte) int
