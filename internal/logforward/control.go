package logforward

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/renameio/v2"

	"github.com/lklog/lklog/internal/forward"
	"github.com/lklog/lklog/internal/forward/config"
	"github.com/lklog/lklog/internal/sockfile"
)

// addedName is the file in the state directory that keeps the drains
// added through the control socket, so they survive a restart.
const addedName = "drains.json"

// control serves the JSON API on the control socket:
//
//	GET    /v1/drains        list (statuses)
//	POST   /v1/drains        add (a config.Drain in JSON), answers its status
//	DELETE /v1/drains/{id}   remove
//	GET    /v1/status        hostname and statuses
type control struct {
	fw       *forward.Forwarder
	hostname string
	stateDir string // "" when added drains cannot be kept
	logf     func(string, ...any)

	mu    sync.Mutex
	added []config.Drain
}

func (c *control) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/drains", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, c.fw.List())
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, StatusReply{Hostname: c.hostname, Drains: c.fw.List()})
	})
	mux.HandleFunc("POST /v1/drains", func(w http.ResponseWriter, r *http.Request) {
		var d config.Drain
		dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&d); err != nil {
			writeErr(w, http.StatusBadRequest, fmt.Errorf("request: %w", err))
			return
		}
		st, err := c.add(d)
		if err != nil {
			writeErr(w, http.StatusBadRequest, err)
			return
		}
		writeJSON(w, http.StatusCreated, st)
	})
	mux.HandleFunc("DELETE /v1/drains/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := c.remove(r.PathValue("id")); err != nil {
			writeErr(w, http.StatusNotFound, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

// StatusReply is the answer to GET /v1/status.
type StatusReply struct {
	Hostname string           `json:"hostname"`
	Drains   []forward.Status `json:"drains"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

func (c *control) add(d config.Drain) (forward.Status, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.fw.Add(d)
	if err != nil {
		return st, err
	}
	d.ID = st.ID
	c.added = append(c.added, d)
	if err := c.save(); err != nil {
		c.logf("%v (the drain runs, but will not come back after a restart)", err)
	}
	return st, nil
}

func (c *control) remove(id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.fw.Remove(id); err != nil {
		return err
	}
	for i, d := range c.added {
		if d.ID == id {
			c.added = append(c.added[:i], c.added[i+1:]...)
			break
		}
	}
	return c.save()
}

func (c *control) save() error {
	if c.stateDir == "" {
		return nil
	}
	b, err := json.MarshalIndent(c.added, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(c.stateDir, addedName), append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("saving added drains: %w", err)
	}
	return nil
}

// loadAdded reads the drains added at run time by an earlier run.
func loadAdded(stateDir string) ([]config.Drain, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, addedName))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading added drains: %w", err)
	}
	var ds []config.Drain
	if err := json.Unmarshal(b, &ds); err != nil {
		return nil, fmt.Errorf("added drains in %s: %w", filepath.Join(stateDir, addedName), err)
	}
	return ds, nil
}

// serveControl listens on path (mode 0600) until ctx ends. The socket is
// born 0600: it is bound in a private directory, given its mode there and
// only then renamed to path, under sockfile's lock (so a stale socket is
// replaced, a live one refused, and two starting at once cannot both take
// the path). At exit it removes path only if it is still its own socket.
func serveControl(ctx context.Context, path string, h http.Handler) (func(), error) {
	var l *net.UnixListener
	own, err := sockfile.Bind(path, "unix", func() error {
		tmp, err := os.MkdirTemp(filepath.Dir(path), ".logforward-ctl-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		name := filepath.Join(tmp, "s")
		ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
		if err != nil {
			return err
		}
		// The file is removed by sockfile, and only if it is still ours.
		ul.SetUnlinkOnClose(false)
		if err := os.Chmod(name, 0o600); err != nil {
			ul.Close()
			return err
		}
		if err := os.Rename(name, path); err != nil {
			ul.Close()
			return err
		}
		l = ul
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("control socket: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	return func() {
		own.Remove() // before the socket closes: see sockfile.File.Remove
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}

// client talks to the control socket.
type client struct {
	hc *http.Client
}

func newClient(path string) *client {
	return &client{hc: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

func (c *client) do(method, p string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, "http://logforward"+p, rd)
	if err != nil {
		return err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("asking logforward: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("logforward answered %s", resp.Status)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
