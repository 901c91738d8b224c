// Command memlogd keeps the logs of a LinuxKit image in memory: containers'
// stdout and stderr (passed by init over the log socket), /dev/log syslog
// and optionally kernel messages, served to logread and logwrite over the
// query socket. See README.md for its flags and protocols.
package main

import (
	"os"

	"github.com/lklog/lklog/internal/memlogd"
)

func main() {
	os.Exit(memlogd.Main(os.Args[1:], os.Stdout, os.Stderr))
}
