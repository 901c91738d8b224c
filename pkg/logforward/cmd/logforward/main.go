// Command logforward ships memlogd's logs to remote servers (syslog over
// UDP, TCP and TLS, RELP), with a spool per drain. See README.md.
package main

import (
	"os"

	"github.com/lklog/lklog/internal/logforward"
)

func main() {
	os.Exit(logforward.Main(os.Args[1:], os.Stdout, os.Stderr))
}
