module github.com/lklog/lklog

go 1.26.0

require (
	github.com/google/renameio/v2 v2.0.2
	github.com/moby/sys/mountinfo v0.7.3
	golang.org/x/sys v0.49.0
	gopkg.in/mcuadros/go-syslog.v2 v2.3.0
	gopkg.in/yaml.v3 v3.0.1
)
