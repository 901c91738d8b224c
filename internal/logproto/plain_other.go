//go:build !amd64

package logproto

// plainBlocks is plainBlocksGo where there is no assembly for it.
func plainBlocks(b []byte) int { return plainBlocksGo(b) }
