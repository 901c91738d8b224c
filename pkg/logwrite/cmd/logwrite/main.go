// Command logwrite writes the logs memlogd holds to rotated files on the
// persistent disk, exactly once across restarts. See README.md.
package main

import (
	"os"

	"github.com/lklog/lklog/internal/logwrite"
)

func main() {
	os.Exit(logwrite.Main(os.Args[1:], os.Stderr))
}
