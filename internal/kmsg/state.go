package kmsg

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// BootIDPath holds the kernel's random identity of the current boot.
const BootIDPath = "/proc/sys/kernel/random/boot_id"

// State is what a reader remembers across restarts: the last kernel
// sequence number it delivered, and the boot it belongs to (sequence
// numbers start again at 0 on every boot).
type State struct {
	Boot string `json:"boot"`
	Seq  uint64 `json:"seq"`
}

// ReadBootID returns the current boot id.
func ReadBootID() (string, error) {
	b, err := os.ReadFile(BootIDPath)
	if err != nil {
		return "", fmt.Errorf("reading the boot id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("reading the boot id: %s is empty", BootIDPath)
	}
	return id, nil
}

// LoadState reads the state file at path. A missing file gives ok false
// and no error.
func LoadState(path string) (st State, ok bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("reading kmsg state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return State{}, false, fmt.Errorf("kmsg state %s is corrupt (%.60q): %w", path, b, err)
	}
	if st.Boot == "" {
		return State{}, false, fmt.Errorf("kmsg state %s names no boot", path)
	}
	return st, true, nil
}

// SaveState writes the state file atomically (a temporary file in the
// same directory, synced, renamed over path), creating its directory.
func SaveState(path string, st State) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding kmsg state: %w", err)
	}
	b = append(b, '\n')
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("saving kmsg state: %w", err)
	}
	if err := renameio.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("saving kmsg state to %s: %w", path, err)
	}
	return nil
}

// Resume decides where to start: after the saved state when it belongs
// to this boot, otherwise from the oldest record (replay) or the end.
// note explains the decision, for a log line.
func Resume(st State, ok bool, boot string, replay bool) (cfg ReaderConfig, note string) {
	switch {
	case ok && st.Boot == boot:
		return ReaderConfig{Start: StartSeq, Next: st.Seq + 1},
			fmt.Sprintf("continuing after kernel record %d delivered before the restart", st.Seq)
	case replay:
		why := "no saved state"
		if ok {
			why = "saved state is from another boot"
		}
		return ReaderConfig{Start: StartSeq, Next: 0}, why + ": replaying the kernel's ring from its oldest record"
	}
	return ReaderConfig{Start: StartEnd}, "starting with the next kernel record (replay disabled)"
}
