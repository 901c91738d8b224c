// Command kmsg forwards the kernel log (/dev/kmsg) to memlogd: each record
// becomes an RFC 5424 datagram on /dev/log with source kmsg, the record's
// own priority and timestamp, and its kernel sequence number; restarted in
// the same boot it continues after the last record it forwarded. See
// internal/kmsg and README.md for its flags.
package main

import (
	"os"

	"github.com/lklog/lklog/internal/kmsg"
)

func main() {
	os.Exit(kmsg.Main(os.Args[1:], os.Stdout, os.Stderr))
}
