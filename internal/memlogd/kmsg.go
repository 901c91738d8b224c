package memlogd

import (
	"context"
	"sync/atomic"

	"github.com/lklog/lklog/internal/kmsg"
	"github.com/lklog/lklog/internal/ring"
)

// readKmsg feeds the ring from /dev/kmsg (-kmsg).
func (d *Daemon) readKmsg(ctx context.Context) error {
	cfg := kmsg.DefaultConfig()
	cfg.StatePath = d.cfg.KmsgState
	cfg.Logf = d.logf
	cfg.Now = now
	return kmsg.Run(ctx, cfg, d.ring)
}

// kmsgGuard stands between /dev/log and the ring when memlogd reads
// /dev/kmsg itself: records a kmsg service also sends (source "kmsg" with
// its kernel sequence number) would be duplicates, so they are dropped and
// memlogd says once that two readers of /dev/kmsg are running.
type kmsgGuard struct {
	d      *Daemon
	warned atomic.Bool
	kept   []ring.Entry
}

func (g *kmsgGuard) Append(es ...ring.Entry) uint64 {
	g.kept = g.kept[:0]
	dropped := 0
	for _, e := range es {
		if _, ok := kmsg.SeqFromSD(e.SD); ok && string(e.Source) == "kmsg" {
			dropped++
			continue
		}
		g.kept = append(g.kept, e)
	}
	if dropped > 0 && g.warned.CompareAndSwap(false, true) {
		g.d.logf(ring.SevWarning, "memlogd -kmsg reads /dev/kmsg itself, yet kernel records arrive on /dev/log from a kmsg service too; dropping those (%d so far in this batch): remove one of the two", dropped)
	}
	if len(g.kept) == 0 {
		return 0
	}
	return g.d.ring.Append(g.kept...)
}
