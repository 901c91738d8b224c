// Package guest is the test init that runs as PID 1 in a VM. For logging it
// behaves as LinuxKit's init does: it starts the init.d scripts (memlogd),
// then runs the onboot entries one after another and starts the services,
// handing their stdout and stderr to memlogd over the external logging
// socket under LinuxKit's names. Every entry is a plain process in the one
// root filesystem: there are no containers.
//
// The host describes what to run in a Plan, stored as JSON at PlanPath in
// the initramfs.
package guest

import (
	"encoding/json"
	"fmt"
	"os"
)

// PlanPath is where the init reads its plan.
const PlanPath = "/etc/vmtest/plan.json"

// Exit codes written to the isa-debug-exit port; QEMU exits with
// (code<<1)|1, so a pass is 33 and a failure 35 on the host. Neither can
// come from QEMU itself or from a power-off or a panic (exit 0).
const (
	ExitPass = 0x10
	ExitFail = 0x11
)

// Markers the init prints on the console.
const (
	MarkerPass = "VMTEST-RESULT: PASS"
	MarkerFail = "VMTEST-RESULT: FAIL"
)

// Modes of a plan.
const (
	ModeTest = "test" // run Check, report the result, power off
	ModeRun  = "run"  // interactive shell or a timed `logread -F`, power off
)

// Plan is what the init runs.
type Plan struct {
	Mode     string   `json:"mode"`
	Modules  []string `json:"modules"`  // absolute paths, in load order
	Onboot   []Proc   `json:"onboot"`   // run one after another
	Services []Proc   `json:"services"` // started together
	// Check is the script run in test mode; it passes when it exits 0
	// and prints a line "suite PASSED".
	Check string `json:"check,omitempty"`
	// CheckTimeout bounds Check, in seconds.
	CheckTimeout int `json:"check_timeout,omitempty"`
	// Disk: mount /dev/vda (ext4) on /var/log before init.d runs.
	Disk bool `json:"disk,omitempty"`
	// Net: bring up eth0 as 10.0.2.15/24 with gateway 10.0.2.2 (QEMU
	// user networking).
	Net bool `json:"net,omitempty"`
	// Interactive (run mode): a shell on the console until it exits.
	// Otherwise `logread -F` is shown for FollowSeconds.
	Interactive   bool `json:"interactive,omitempty"`
	FollowSeconds int  `json:"follow_seconds,omitempty"`
	// EchoTTY, when set (run mode), is the device that gets the init.d
	// scripts' output, and so memlogd's console echo, instead of the
	// console: a second serial port that the host saves in a file.
	EchoTTY string `json:"echo_tty,omitempty"`
}

// Proc is one onboot entry or service.
type Proc struct {
	Name    string   `json:"name"`
	Command []string `json:"command"`
	Env     []string `json:"env,omitempty"`
}

// Validate checks a plan for mistakes the host can make.
func (p *Plan) Validate() error {
	if p.Mode != ModeTest && p.Mode != ModeRun {
		return fmt.Errorf("plan: unknown mode %q", p.Mode)
	}
	if p.Mode == ModeTest && p.Check == "" {
		return fmt.Errorf("plan: test mode needs a check script")
	}
	seen := map[string]bool{}
	for _, list := range [][]Proc{p.Onboot, p.Services} {
		for _, pr := range list {
			if pr.Name == "" || len(pr.Command) == 0 {
				return fmt.Errorf("plan: entry %q needs a name and a command", pr.Name)
			}
			if seen[pr.Name] {
				return fmt.Errorf("plan: duplicate entry name %q", pr.Name)
			}
			seen[pr.Name] = true
		}
	}
	return nil
}

// Marshal encodes a plan.
func (p *Plan) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return json.MarshalIndent(p, "", "  ")
}

// ReadPlan loads and validates the plan at path.
func ReadPlan(path string) (*Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("plan: %s: %w", path, err)
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}
