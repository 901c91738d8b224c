package kmsg

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/ring"
)

const benchText = "usb 1-1: new high-speed USB device number 2 using xhci_hcd"

func BenchmarkParse(b *testing.B) {
	raw := []byte("6,339,5140900,-;" + benchText + "\n SUBSYSTEM=usb\n DEVICE=c189:1\n")
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime is this process's user+system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// countSink counts entries and closes full when it has n.
type countSink struct {
	inner Sink
	n     int64
	got   atomic.Int64
	full  chan struct{}
}

func (s *countSink) Append(es ...ring.Entry) uint64 {
	var r uint64
	if s.inner != nil {
		r = s.inner.Append(es...)
	}
	if s.got.Add(int64(len(es))) == s.n {
		close(s.full)
	}
	return r
}

func fakeFull(n int) *FakeDevice {
	d := NewFakeDevice(n, 0)
	for i := 0; i < n; i++ {
		d.Add(6, uint64(i)*10, benchText, "SUBSYSTEM=usb", "DEVICE=c189:1")
	}
	return d
}

func reportRate(b *testing.B, n int, wall, cpu time.Duration) {
	b.ReportMetric(float64(n)/wall.Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/record")
}

// BenchmarkRunRing: memlogd's -kmsg path, fake device to a ring (with a
// state file on the temporary directory).
func BenchmarkRunRing(b *testing.B) {
	d := fakeFull(b.N)
	rg, err := ring.New(ring.Config{MaxEntries: 5000, MaxBytes: 6 << 20})
	if err != nil {
		b.Fatal(err)
	}
	sink := &countSink{inner: rg, n: int64(b.N), full: make(chan struct{})}
	cfg := DefaultConfig()
	cfg.OpenDevice = func(string) (Device, error) { return d.Reopen(), nil }
	cfg.StatePath = filepath.Join(b.TempDir(), "state")
	cfg.BootID = "bench"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	c0, t0 := cpuTime(b), time.Now()
	go func() { done <- Run(ctx, cfg, sink) }()
	<-sink.full
	wall, cpu := time.Since(t0), cpuTime(b)-c0
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	reportRate(b, b.N, wall, cpu)
}

// BenchmarkServeDatagram: the kmsg service's path, fake device to RFC 5424
// datagrams on a real memlogd's /dev/log (CPU of this process only:
// reading, converting, formatting, sending).
func BenchmarkServeDatagram(b *testing.B) {
	bin := binaries(b)
	dir := b.TempDir()
	startMemlogd(b, bin, dir)
	d := fakeFull(b.N)
	cfg := ServiceConfig{Config: DefaultConfig(), SyslogSocket: filepath.Join(dir, "dev-log")}
	cfg.OpenDevice = func(string) (Device, error) { return d.Reopen(), nil }
	cfg.Logf = func(uint8, string, ...any) {}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	b.ResetTimer()
	c0, t0 := cpuTime(b), time.Now()
	go func() { done <- Serve(ctx, cfg, nil) }()
	// Done when the fake has been read to the end.
	for {
		d.mu.Lock()
		at := d.pos
		d.mu.Unlock()
		if at == uint64(b.N) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	wall, cpu := time.Since(t0), cpuTime(b)-c0
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	reportRate(b, b.N, wall, cpu)
}

// BenchmarkLatencyRealDevice: from a write() to /dev/kmsg to the line in
// the output of a `logread -f` follower, through the kmsg binary and a
// real memlogd. Reports the median and the 99th percentile.
func BenchmarkLatencyRealDevice(b *testing.B) {
	openReal(b).Close()
	bin := binaries(b)
	dir := b.TempDir()
	startMemlogd(b, bin, dir)
	// The state goes to a tmpfs, as /run is in LinuxKit: on a disk each
	// save's fsync (a few ms) would delay the record after it.
	stateDir := dir
	if shm, err := os.MkdirTemp("/dev/shm", "kmsg-bench-"); err == nil {
		stateDir = shm
		defer os.RemoveAll(shm)
	}
	startKmsg(b, bin, dir, "-replay=false", "-state", filepath.Join(stateDir, "state"))
	f := exec.Command(filepath.Join(bin, "logread"), "-socket", filepath.Join(dir, "q.sock"), "-f")
	out, err := f.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := f.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { f.Process.Kill(); f.Wait() }()
	lines := make(chan string, 1024)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	m := marker(b)
	// Warm up: the follower and the service are connected once a first
	// marker comes through.
	wait := func(want string) time.Duration {
		start := time.Now()
		timeout := time.After(10 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					b.Fatal("logread -f ended")
				}
				if strings.HasSuffix(l, ";kmsg;"+want) {
					return time.Since(start)
				}
			case <-timeout:
				b.Fatalf("%q did not reach logread -f within 10 s", want)
			}
		}
	}
	for i := 0; ; i++ {
		writeKmsg(b, fmt.Sprintf("<6>%s warm %d\n", m, i))
		ok := make(chan bool, 1)
		go func() {
			select {
			case l := <-lines:
				ok <- strings.Contains(l, m)
			case <-time.After(200 * time.Millisecond):
				ok <- false
			}
		}()
		if <-ok {
			break
		}
		if i == 50 {
			b.Fatal("the follower saw nothing in 50 tries")
		}
	}
	time.Sleep(50 * time.Millisecond)
	for len(lines) > 0 {
		<-lines
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := fmt.Sprintf("%s n %d", m, i)
		t0 := time.Now()
		writeKmsg(b, "<6>"+msg+"\n")
		wait(msg)
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkDeviceWakeupRealDevice: from a write() to /dev/kmsg to a
// Reader waiting on the device getting the record, to tell the kernel's
// part of the latency from ours (the kernel wakes /dev/kmsg readers from
// a lazy irq_work, run at the next timer tick).
func BenchmarkDeviceWakeupRealDevice(b *testing.B) {
	r, err := NewReader(openReal(b), ReaderConfig{Start: StartEnd})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	m := marker(b)
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		msg := fmt.Sprintf("%s w %d", m, i)
		t0 := time.Now()
		writeKmsg(b, "<7>"+msg+"\n")
		for {
			tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			ev, err := r.Next(tctx, true)
			cancel()
			if err != nil {
				b.Fatal(err)
			}
			if ev.Loss == nil && string(ev.Record.Text) == msg {
				break
			}
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
