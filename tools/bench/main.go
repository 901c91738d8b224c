// Command bench runs the project's benchmarks: the Go benchmarks of the
// ring, the encoders and the parsers, then end-to-end runs of the built
// memlogd driven by the shared load generator (../shared/bench/loadgen),
// next to the physical limit measured in the same run (physlimit). It
// prints the figures the memlogd issue asks for. With -base, every run
// is followed by one of a baseline memlogd (A B A B ...), and each
// scenario ends with the ratios of their medians.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type follower struct {
	Kind     string  `json:"kind"`
	Received int64   `json:"received"`
	Lost     int64   `json:"lost"`
	Dups     int64   `json:"dups_or_reordered"`
	Gaps     int64   `json:"gap_events"`
	Rate     float64 `json:"lines_per_s"`
	Complete bool    `json:"complete"`
}

type dump struct {
	Lines   int64   `json:"lines"`
	TotalMs float64 `json:"total_ms"`
}

type result struct {
	Sent      int64      `json:"sent"`
	WriteRate float64    `json:"write_lines_per_s"`
	Followers []follower `json:"followers"`
	CPUPerM   float64    `json:"daemon_cpu_s_per_Mline"`
	LoadgenS  float64    `json:"loadgen_cpu_s"`
	HWMKB     int64      `json:"daemon_vmhwm_kb"`
	Dumps     []dump     `json:"dumps"`
}

func main() {
	shared := flag.String("shared", "../shared/bench", "folder with loadgen and physlimit")
	bin := flag.String("bin", "bin", "folder with the built memlogd")
	runs := flag.Int("runs", 3, "runs per end-to-end scenario (the median is reported)")
	goBench := flag.Bool("go", true, "run the Go benchmarks too")
	base := flag.String("base", "", "folder with a baseline memlogd to run after each run of -bin's, for ratios (e.g. /tmp/base/bin)")
	only := flag.String("only", "", "run only the scenarios whose name contains this")
	flag.Parse()
	if err := run(*shared, *bin, *base, *only, *runs, *goBench); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(shared, bin, base, only string, runs int, goBench bool) error {
	if goBench {
		fmt.Println("== Go benchmarks: go test -run '^$' -bench . -benchtime 1s ./internal/ring ./internal/logproto ./internal/ingest ./internal/syslogd")
		cmd := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchtime", "1s",
			"./internal/ring", "./internal/logproto", "./internal/ingest", "./internal/syslogd")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go benchmarks: %w", err)
		}
	}
	if _, err := os.Stat(filepath.Join(shared, "loadgen", "main.go")); err != nil {
		fmt.Printf("\n== end-to-end: skipped, the load generator is not at %s/loadgen\n", shared)
		return nil
	}
	tmp, err := os.MkdirTemp("", "lklog-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	for _, tool := range []string{"loadgen", "physlimit"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(tmp, tool), ".")
		cmd.Dir = filepath.Join(shared, tool)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("building %s: %v\n%s", tool, err, out)
		}
	}
	memlogd, err := filepath.Abs(filepath.Join(bin, "memlogd"))
	if err != nil {
		return err
	}
	baseMemlogd := ""
	if base != "" {
		if baseMemlogd, err = filepath.Abs(filepath.Join(base, "memlogd")); err != nil {
			return err
		}
	}

	fmt.Printf("\n== physical limit (physlimit -k 4 -l 80), the baseline of this run: median of %d\n", runs)
	var physRates []float64
	for i := 0; i < runs; i++ {
		out, err := exec.Command(filepath.Join(tmp, "physlimit"), "-k", "4", "-l", "80").CombinedOutput()
		if err != nil {
			return fmt.Errorf("physlimit: %v\n%s", err, out)
		}
		fmt.Print(string(out))
		physRates = append(physRates, physRate(out))
	}
	sort.Float64s(physRates)
	phys := physRates[len(physRates)/2]
	fmt.Printf("physlimit: %.0f lines/s\n", phys)

	type scenario struct {
		name    string
		daemon  []string
		loadgen []string
	}
	common := []string{"-n", "4", "-m", "250000", "-l", "80"}
	scenarios := []scenario{
		{"fast follower, mode 1 (N=4 L=80 1e6 lines, -max-lines 5000)", []string{"-max-lines", "5000"}, append(common, "-followers", "fast", "-follow-mode", "1")},
		{"fast follower, mode 2", []string{"-max-lines", "5000"}, append(common, "-followers", "fast", "-follow-mode", "2")},
		{"fast follower, mode 1, -pace-wait 0 (pure ring)", []string{"-max-lines", "5000", "-pace-wait", "0"}, append(common, "-followers", "fast")},
		{"slow follower (1 ms per 100 lines)", []string{"-max-lines", "5000"}, append(common, "-followers", "slow")},
		{"no follower", []string{"-max-lines", "5000"}, append(common, "-followers", "")},
		{"memory: -max-lines 100000 L=512, 4 stalled followers", []string{"-max-lines", "100000", "-max-bytes", "56000000"},
			[]string{"-n", "4", "-m", "25000", "-l", "512", "-followers", "stall,stall,stall,stall", "-drain-timeout", "1s"}},
		{"dump of a full 100,000-line ring (L=80)", []string{"-max-lines", "100000", "-max-bytes", "16000000"},
			[]string{"-n", "4", "-m", "25000", "-l", "80", "-followers", "", "-settle", "500ms", "-dump-after", "3"}},
	}
	fmt.Printf("\n== end-to-end: %s/loadgen against %s (fresh daemon per run, console echo to /dev/null), median of %d\n", shared, memlogd, runs)
	for _, s := range scenarios {
		if !strings.Contains(s.name, only) {
			continue
		}
		var rs, bs []result
		for i := 0; i < runs; i++ {
			r, err := once(tmp, memlogd, s.daemon, s.loadgen)
			if err != nil {
				return fmt.Errorf("%s: %w", s.name, err)
			}
			rs = append(rs, r)
			if baseMemlogd != "" {
				b, err := once(tmp, baseMemlogd, s.daemon, s.loadgen)
				if err != nil {
					return fmt.Errorf("%s, baseline: %w", s.name, err)
				}
				bs = append(bs, b)
			}
		}
		fmt.Printf("\n-- %s\n", s.name)
		m := summarize(rs)
		fmt.Printf("   writers: %.0f lines/s (%.3f x physlimit), memlogd CPU %.2f s per million lines, peak RSS %.1f MiB; loadgen CPU %.2f s per million lines\n",
			m.WriteRate, m.WriteRate/phys, m.CPUPerM, float64(m.HWMKB)/1024, m.LoadgenS)
		var lost []string
		for _, x := range rs {
			for _, f := range x.Followers {
				if f.Kind != "stall" {
					lost = append(lost, fmt.Sprintf("%s lost %d dup/reordered %d gaps %d", f.Kind, f.Lost, f.Dups, f.Gaps))
				}
			}
		}
		if len(lost) > 0 {
			fmt.Printf("   every run: %s\n", strings.Join(lost, "; "))
		}
		for _, d := range m.Dumps {
			fmt.Printf("   dump of %d lines: %.1f ms\n", d.Lines, d.TotalMs)
		}
		if len(bs) > 0 {
			b := summarize(bs)
			fmt.Printf("   baseline %s: %.0f lines/s (%.3f x physlimit), memlogd CPU %.2f s per million lines, peak RSS %.1f MiB\n",
				baseMemlogd, b.WriteRate, b.WriteRate/phys, b.CPUPerM, float64(b.HWMKB)/1024)
			fmt.Printf("   against the baseline: %.2f x its lines/s, %.2f x its CPU per line\n",
				m.WriteRate/b.WriteRate, m.CPUPerM/b.CPUPerM)
		}
		if strings.HasPrefix(s.name, "memory") {
			payload := 100000.0 * 512 / (1 << 20)
			limit := 1.3*payload + 16
			fmt.Printf("   payload %.1f MiB; target peak RSS <= 1.3 x payload + 16 MiB = %.1f MiB: %v\n",
				payload, limit, float64(m.HWMKB)/1024 <= limit)
		}
	}
	return nil
}

// summarize returns the median of each figure of rs (the dumps of the
// run with the median write rate); the loadgen CPU per million lines.
func summarize(rs []result) result {
	med := func(f func(r result) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		return v[len(v)/2]
	}
	byRate := append([]result(nil), rs...)
	sort.Slice(byRate, func(i, j int) bool { return byRate[i].WriteRate < byRate[j].WriteRate })
	return result{
		WriteRate: med(func(r result) float64 { return r.WriteRate }),
		CPUPerM:   med(func(r result) float64 { return r.CPUPerM }),
		HWMKB:     int64(med(func(r result) float64 { return float64(r.HWMKB) })),
		LoadgenS: med(func(r result) float64 {
			if r.Sent == 0 {
				return 0
			}
			return r.LoadgenS / float64(r.Sent) * 1e6
		}),
		Dumps: byRate[len(byRate)/2].Dumps,
	}
}

func physRate(out []byte) float64 {
	var v map[string]any
	for _, line := range bytes.Split(out, []byte("\n")) {
		if json.Unmarshal(line, &v) == nil {
			for _, k := range []string{"lines_per_s", "lines_per_sec", "rate"} {
				if f, ok := v[k].(float64); ok {
					return f
				}
			}
		}
	}
	return 1
}

// once runs one fresh memlogd and one loadgen invocation against it.
func once(tmp, memlogd string, daemonArgs, loadArgs []string) (result, error) {
	dir, err := os.MkdirTemp(tmp, "run-")
	if err != nil {
		return result{}, err
	}
	logSock, qSock := filepath.Join(dir, "log.sock"), filepath.Join(dir, "q.sock")
	args := append([]string{"-socket-log", logSock, "-socket-query", qSock, "-socket-syslog", ""}, daemonArgs...)
	d := exec.Command(memlogd, args...)
	if err := d.Start(); err != nil {
		return result{}, err
	}
	defer func() {
		d.Process.Signal(os.Interrupt)
		d.Wait()
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(qSock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return result{}, fmt.Errorf("memlogd did not create %s", qSock)
		}
		time.Sleep(10 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	la := append([]string{"-q", "-log-socket", logSock, "-query-socket", qSock, "-pid", fmt.Sprint(d.Process.Pid)}, loadArgs...)
	out, err := exec.CommandContext(ctx, filepath.Join(tmp, "loadgen"), la...).Output()
	if err != nil {
		return result{}, fmt.Errorf("loadgen %s: %w", strings.Join(la, " "), err)
	}
	var r result
	if err := json.Unmarshal(bytes.TrimSpace(out), &r); err != nil {
		return result{}, fmt.Errorf("loadgen output %q: %w", out, err)
	}
	return r, nil
}
