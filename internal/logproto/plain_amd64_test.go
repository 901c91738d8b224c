package logproto

import "testing"

// checkPlainBlocks compares both implementations of plainBlocks with
// the definition on b (where the processor has AVX2).
func checkPlainBlocks(t *testing.T, b []byte) {
	t.Helper()
	want := min(plainLenRef(b), len(b)&^15)
	if got := plainBlocksSSE2(b); got != want {
		t.Fatalf("plainBlocksSSE2(%q) = %d, want %d", b, got, want)
	}
	if hasAVX2 {
		if got := plainBlocksAVX2(b); got != want {
			t.Fatalf("plainBlocksAVX2(%q) = %d, want %d", b, got, want)
		}
	}
}

func init() { checkBlocks = checkPlainBlocks }

// BenchmarkPlainBlocks: the SSE2 and AVX2 scans alone on the line of
// BenchmarkPlainLen.
func BenchmarkPlainBlocks(b *testing.B) {
	line := make([]byte, 4*81)
	for i := range line {
		line[i] = 'x'
		if i%81 == 80 {
			line[i] = '\n'
		}
	}
	for _, f := range []struct {
		name string
		fn   func([]byte) int
		ok   bool
	}{{"SSE2", plainBlocksSSE2, true}, {"AVX2", plainBlocksAVX2, hasAVX2}} {
		if !f.ok {
			continue
		}
		b.Run(f.name, func(b *testing.B) {
			for b.Loop() {
				if f.fn(line) != 80 {
					b.Fatal("wrong end")
				}
			}
		})
	}
}
