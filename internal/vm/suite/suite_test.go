package suite

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lklog/lklog/internal/vm/yml"
)

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions("kernel:\n# vmtest: disk=128M net\n  # vmtest: timeout=45s mem=256\n")
	if err != nil {
		t.Fatal(err)
	}
	if o.DiskMB != 128 || !o.Net || o.Timeout != 45*time.Second || o.MemMB != 256 {
		t.Fatalf("got %+v", o)
	}
	if o, _ := ParseOptions("# vmtest: disk\n"); o.DiskMB != 64 || o.Timeout != 120*time.Second {
		t.Fatalf("defaults: %+v", o)
	}
	for _, bad := range []string{"# vmtest: bogus\n", "# vmtest: timeout=x\n", "# vmtest: disk=-1\n", "# vmtest: mem=1\n"} {
		if _, err := ParseOptions(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	mk := func(name, yml string, check bool) {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if yml != "" {
			if err := os.WriteFile(filepath.Join(d, "test.yml"), []byte(yml), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if check {
			if err := os.WriteFile(filepath.Join(d, "check.sh"), []byte("echo suite PASSED\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	mk("002_b", "onboot: []\n", true)
	mk("001_a", "# vmtest: disk\nservices:\n  - name: s\n    image: busybox:1\n    command: [sleep, '1']\n", true)
	mk("lib", "", false) // not a case
	cases, err := Discover(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) != 2 || cases[0].Name != "001_a" || cases[0].Opts.DiskMB != 64 || len(cases[0].Config.Services) != 1 {
		t.Fatalf("cases = %+v", cases)
	}
	if only, _ := Discover(dir, "002"); len(only) != 1 || only[0].Name != "002_b" {
		t.Fatalf("filter: %+v", only)
	}
	mk("003_nocheck", "onboot: []\n", false)
	if _, err := Discover(dir, ""); err == nil || !strings.Contains(err.Error(), "003_nocheck") {
		t.Fatalf("case without check.sh: err = %v", err)
	}
}

func TestRunnable(t *testing.T) {
	run, skipped := Runnable([]yml.Entry{
		{Name: "getty", Image: "linuxkit/getty:abc"},
		{Name: "mem", Image: "lklog/memlogd:dev"},
		{Name: "hello", Image: "busybox:1.36", Command: []string{"echo"}},
		{Name: "bb", Image: "docker.io/library/busybox"},
	})
	if len(run) != 2 || run[0].Name != "mem" || run[1].Name != "hello" || len(skipped) != 2 {
		t.Fatalf("run %+v skipped %v", run, skipped)
	}
}

func TestMakeDisk(t *testing.T) {
	if _, err := exec.LookPath("mkfs.ext4"); err != nil {
		t.Skip("mkfs.ext4 not installed (vmtest installs e2fsprogs)")
	}
	dir := t.TempDir()
	seed := filepath.Join(dir, "seed")
	if err := os.MkdirAll(seed, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(seed, "hello.txt"), []byte("from the seed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(dir, "d.img")
	if err := MakeDisk(context.Background(), img, 8, seed); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(img); err != nil || st.Size() != 8<<20 {
		t.Fatalf("image: %v %v", st, err)
	}
	if _, err := exec.LookPath("debugfs"); err == nil {
		out, err := exec.Command("debugfs", "-R", "cat /hello.txt", img).Output()
		if err != nil || string(out) != "from the seed\n" {
			t.Fatalf("debugfs: %q %v", out, err)
		}
	}
	if err := MakeDisk(context.Background(), filepath.Join(dir, "nodir", "x.img"), 8, ""); err == nil {
		t.Fatal("bad path accepted")
	}
}

func TestLock(t *testing.T) {
	dir := t.TempDir()
	var out strings.Builder
	unlock, err := Lock(context.Background(), dir, time.Second, &out)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to the open file: a second open in this process
	// conflicts like another process would.
	if _, err := Lock(context.Background(), dir, 300*time.Millisecond, &out); err == nil {
		t.Fatal("second lock granted while the first is held")
	}
	if !strings.Contains(out.String(), "waiting for another vmtest run") {
		t.Errorf("no waiting message: %q", out.String())
	}
	unlock()
	unlock2, err := Lock(context.Background(), dir, time.Second, &out)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	unlock2()
}

func TestTimeScale(t *testing.T) {
	for _, c := range []struct {
		scale float64
		in    time.Duration
		want  time.Duration
	}{{0, time.Minute, time.Minute}, {1, time.Minute, time.Minute}, {3, 150 * time.Second, 450 * time.Second}, {0.5, time.Minute, time.Minute}} {
		e := &Env{TimeScale: c.scale}
		if got := e.scaled(c.in); got != c.want {
			t.Errorf("scale %v of %v: %v, want %v", c.scale, c.in, got, c.want)
		}
	}
}
