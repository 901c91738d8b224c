// Command vminit is the init (PID 1) of lklog's test VMs: it runs the plan
// that tools/vmtest put in the initramfs. See internal/vm/guest.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/lklog/lklog/internal/vm/guest"
)

func main() {
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "vminit: must run as PID 1 inside a test VM")
		os.Exit(2)
	}
	os.Setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	guest.Main(context.Background())
}
