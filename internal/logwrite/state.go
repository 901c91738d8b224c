package logwrite

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lklog/lklog/internal/logproto"
)

// State is what the state file holds: the cursor of the last entry whose
// line is in the files, and the size each file had at that moment. A
// logwrite that restarts against the same memlogd instance cuts every
// listed file back to its size (removing lines written after the
// checkpoint) and asks memlogd for the entries after the cursor, so each
// line is written exactly once.
type State struct {
	Version int             `json:"version"`
	Cursor  logproto.Cursor `json:"cursor"`
	Files   []FileState     `json:"files"`
}

// FileState is one file at a checkpoint.
type FileState struct {
	Name string `json:"name"`
	// Source is the source written to it (empty in state files of
	// earlier versions).
	Source string `json:"source,omitempty"`
	Ino    uint64 `json:"ino"`
	Size   int64  `json:"size"`
	// Rotating says the file was rotated right after this checkpoint
	// (which has all its lines): a file under this name with another
	// inode was created after the checkpoint and holds only lines
	// written after it. This spares a second checkpoint per rotation.
	Rotating bool `json:"rotating,omitempty"`
}

const stateVersion = 1

// LoadState reads the state file of dir. A missing file is the zero State
// and no error.
func LoadState(dir string) (State, error) {
	p := filepath.Join(dir, StateName)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("reading state: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return State{}, fmt.Errorf("state file %s is damaged: %w", p, err)
	}
	if s.Version != stateVersion {
		return State{}, fmt.Errorf("state file %s: version %d, want %d", p, s.Version, stateVersion)
	}
	return s, nil
}

// SaveState replaces the state file of dir atomically (written to a
// temporary file, synced, renamed).
func SaveState(dir string, s State) error {
	p, err := writePending(dir, s, true)
	if err != nil {
		return err
	}
	return p.replace()
}

// pendingState is a state written (and synced, unless for a quick
// checkpoint: writer.mark) under a temporary name in the log directory
// (one that logfile.RemoveTemps removes), waiting to replace the state
// file. Writing it needs nothing else to be on the
// disk yet, so it can be done while the log files are synced; only the
// rename must wait for them.
//
// Not renameio's PendingFile: its CloseAtomicallyReplace syncs the file
// again before the rename, which costs every checkpoint a second fsync
// here (measured: the checkpoints of a catch-up took about a tenth longer).
type pendingState struct{ tmp, dst string }

func writePending(dir string, s State, synced bool) (*pendingState, error) {
	s.Version = stateVersion
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encoding state: %w", err)
	}
	b = append(b, '\n')
	// The temporary file goes in dir itself, so that the rename is
	// atomic: ".logwrite.state" and random digits.
	f, err := os.CreateTemp(dir, "."+StateName+"*")
	if err != nil {
		return nil, fmt.Errorf("saving state: %w", err)
	}
	p := &pendingState{tmp: f.Name(), dst: filepath.Join(dir, StateName)}
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil && synced {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		p.discard()
		return nil, fmt.Errorf("saving state: %w", err)
	}
	return p, nil
}

// replace puts the pending state in place of the state file.
func (p *pendingState) replace() error {
	if err := os.Rename(p.tmp, p.dst); err != nil {
		p.discard()
		return fmt.Errorf("saving state: %w", err)
	}
	return nil
}

// discard removes the pending state.
func (p *pendingState) discard() { os.Remove(p.tmp) }
