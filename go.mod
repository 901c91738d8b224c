module github.com/lklog/lklog

go 1.26.0

require (
	github.com/google/renameio/v2 v2.0.2 // indirect
	github.com/moby/sys/mountinfo v0.7.3 // indirect
	golang.org/x/sys v0.49.0 // indirect
	gopkg.in/mcuadros/go-syslog.v2 v2.3.0 // indirect
	gopkg.in/yaml.v3 v3.0.1
)
