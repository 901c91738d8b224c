package kmsg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lklog/lklog/internal/logproto"
	"github.com/lklog/lklog/internal/ring"
)

// Sink receives entries: *ring.Ring is one.
type Sink interface {
	Append(es ...ring.Entry) uint64
}

// Config configures Run.
type Config struct {
	// Device is the kernel log device; "" means DefaultPath.
	Device string
	// MinLevel keeps records at least this severe: level number <=
	// MinLevel (0 emerg .. 7 debug). 7 keeps everything; the zero value
	// keeps only emergencies, so start from DefaultConfig. Loss entries
	// are always kept.
	MinLevel int
	// Replay: on a fresh boot (no state of this boot), start with the
	// oldest record the kernel holds; otherwise with the next one
	// written.
	Replay bool
	// StatePath is where the last delivered sequence number is kept
	// across restarts; "" keeps none (every start is a fresh boot).
	StatePath string

	// Logf receives notes about what Run decided or met (nil: none);
	// memlogd's own logf has this signature.
	Logf func(severity uint8, format string, args ...any)
	// OpenDevice opens Device; nil means Open. For tests.
	OpenDevice func(path string) (Device, error)
	// Now is the time of receipt in Unix nanoseconds; nil means the
	// system clock.
	Now func() int64
	// BootTime: see ReaderConfig; nil means BootTime.
	BootTime func() int64
	// BootID is the current boot's id; "" means read it from
	// BootIDPath.
	BootID string
	// Delivered is a position known to be delivered besides the state
	// file (the kmsg service asks memlogd for the last kernel record it
	// holds): of the two, the later one of this boot is where reading
	// continues.
	Delivered *State
	// StateEvery bounds how long delivered records go without a state
	// save while records keep coming; 0 means 250 ms. The state is also
	// saved whenever the kernel has nothing more to read, and at exit.
	StateEvery time.Duration
}

// DefaultConfig keeps every level, replays the ring on a fresh boot and
// keeps no state.
func DefaultConfig() Config {
	return Config{Device: DefaultPath, MinLevel: int(ring.SevDebug), Replay: true}
}

// ParseLevel accepts a level number 0..7 or a syslog severity name
// (emerg, alert, crit, err, warning, notice, info, debug, and the usual
// aliases).
func ParseLevel(s string) (int, error) { return logproto.ParseSeverity(s) }

// batchMax bounds the entries handed to the sink at once.
const batchMax = 128

// Run reads the kernel log into sink until ctx is done; then it saves
// the state and returns nil. It returns an error at once when the device
// cannot be opened (naming what is missing), and when reading fails.
//
// In memlogd: kmsg.Run(ctx, cfg, d.ring).
func Run(ctx context.Context, cfg Config, sink Sink) error {
	return run(ctx, cfg, func(es []ring.Entry) (int, error) {
		sink.Append(es...)
		return len(es), nil
	})
}

// deliverFunc delivers entries in order and returns how many it
// delivered; with fewer than all, it returns why (run then stops).
type deliverFunc func(es []ring.Entry) (int, error)

func run(ctx context.Context, cfg Config, deliver deliverFunc) error {
	if cfg.Device == "" {
		cfg.Device = DefaultPath
	}
	if cfg.MinLevel < 0 || cfg.MinLevel > 7 {
		return fmt.Errorf("kmsg: minimum level %d is not in 0..7", cfg.MinLevel)
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(uint8, string, ...any) {}
	}
	now := cfg.Now
	if now == nil {
		now = func() int64 { return time.Now().UnixNano() }
	}
	open := cfg.OpenDevice
	if open == nil {
		open = Open
	}
	every := cfg.StateEvery
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	boot := cfg.BootID
	if boot == "" && (cfg.StatePath != "" || cfg.Delivered != nil) {
		var err error
		if boot, err = ReadBootID(); err != nil {
			return fmt.Errorf("kmsg: %w", err)
		}
	}
	var st State
	var ok bool
	if cfg.StatePath != "" {
		var err error
		st, ok, err = LoadState(cfg.StatePath)
		if err != nil {
			logf(ring.SevWarning, "kmsg: %v; starting as on a fresh boot", err)
		}
	}
	if d := cfg.Delivered; d != nil && d.Boot == boot && (!ok || st.Boot != boot || d.Seq > st.Seq) {
		if ok && st.Boot == boot {
			logf(ring.SevWarning, "kmsg: records up to %d were delivered but the state file says %d (killed before saving it?): continuing after %d", d.Seq, st.Seq, d.Seq)
		}
		st, ok = *d, true
	}
	rcfg, note := Resume(st, ok, boot, cfg.Replay)
	logf(ring.SevInfo, "kmsg: %s", note)
	rcfg.BootTime = cfg.BootTime
	dev, err := open(cfg.Device)
	if err != nil {
		return fmt.Errorf("kmsg: %w", err)
	}
	rd, err := NewReader(dev, rcfg)
	if err != nil {
		dev.Close()
		return fmt.Errorf("kmsg: %w", err)
	}
	defer rd.Close()

	var (
		conv  Converter
		batch []ring.Entry
		// marks[i] is the last sequence number dealt with once batch[i]
		// is delivered (-1: none yet).
		marks     []int64
		last      uint64 // last sequence number read (delivered, pending or filtered)
		haveLast  bool
		done      uint64 // last sequence number delivered or filtered
		haveDone  bool
		saved     uint64
		haveSaved bool
		lastSave  = time.Now()
	)
	save := func(force bool) error {
		if cfg.StatePath == "" || !haveDone || haveSaved && saved == done {
			return nil
		}
		if !force && time.Since(lastSave) < every {
			return nil
		}
		lastSave = time.Now()
		if err := SaveState(cfg.StatePath, State{Boot: boot, Seq: done}); err != nil {
			return err
		}
		saved, haveSaved = done, true
		return nil
	}
	// flush delivers the batch and saves the state.
	flush := func(idle bool) error {
		var derr error
		if len(batch) > 0 {
			n, err := deliver(batch)
			if n == len(batch) && haveLast {
				done, haveDone = last, true
			} else if n > 0 && marks[n-1] >= 0 {
				done, haveDone = uint64(marks[n-1]), true
			}
			if n < len(batch) {
				derr = err
				if derr == nil {
					derr = fmt.Errorf("kmsg: %d of %d entries not delivered", len(batch)-n, len(batch))
				}
			}
			batch, marks = batch[:0], marks[:0]
			conv.Reset()
		} else if haveLast {
			done, haveDone = last, true
		}
		if err := save(idle || derr != nil); err != nil {
			logf(ring.SevErr, "kmsg: %v", err)
		}
		return derr
	}
	for {
		// Wait only with nothing left to deliver or save.
		idle := len(batch) == 0 && (cfg.StatePath == "" || !haveLast || haveSaved && saved == last)
		ev, err := rd.Next(ctx, idle)
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN):
			if err := flush(true); err != nil {
				return stopped(ctx, err)
			}
			continue
		case ctx.Err() != nil:
			return stopped(ctx, flush(true))
		default:
			flush(true)
			return fmt.Errorf("kmsg: %w", err)
		}
		if ev.Loss == nil && ev.Malformed == nil {
			last, haveLast = ev.Record.Seq, true
			if int(ev.Record.Level()) > cfg.MinLevel {
				continue
			}
		}
		mark := int64(-1)
		switch {
		case ev.Loss != nil && ev.Loss.Known:
			mark = int64(ev.Loss.Last) // lost for good: nothing to wait for
		case haveLast:
			mark = int64(last)
		}
		batch = append(batch, conv.Entry(&ev, now()))
		marks = append(marks, mark)
		if len(batch) >= batchMax {
			if err := flush(false); err != nil {
				return stopped(ctx, err)
			}
		}
	}
}

// stopped turns an error met while stopping into nil.
func stopped(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil {
		return nil
	}
	return err
}
