// Command logread prints the logs memlogd holds. See README.md.
package main

import (
	"os"

	"github.com/lklog/lklog/internal/logread"
)

func main() {
	os.Exit(logread.Main(os.Args[1:], os.Stdout, os.Stderr))
}
