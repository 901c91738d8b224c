// Package ociimage writes a single-layer container image as an OCI image
// layout tar archive (oci-layout, index.json, blobs/sha256/...), the format
// `linuxkit cache import` and `docker load`-style tools read, without a
// container engine. The output is reproducible: same inputs, same bytes.
package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// Media types (OCI image spec v1).
const (
	MediaIndex    = "application/vnd.oci.image.index.v1+json"
	MediaManifest = "application/vnd.oci.image.manifest.v1+json"
	MediaConfig   = "application/vnd.oci.image.config.v1+json"
	MediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// Annotations naming the image.
const (
	AnnotationRefName   = "org.opencontainers.image.ref.name" // the tag
	AnnotationImageName = "io.containerd.image.name"          // full reference; LinuxKit's cache reads this
)

// File is one regular file of the image's filesystem.
type File struct {
	Path string // absolute path in the image, e.g. /usr/bin/memlogd
	Mode int64  // permission bits
	Data []byte
}

// Image describes what to write.
type Image struct {
	Name       string // full reference, e.g. docker.io/lklog/memlogd:dev
	Files      []File
	Entrypoint []string
	Cmd        []string
	Labels     map[string]string
	Arch       string // default amd64
}

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Platform    *Platform         `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Platform of an image manifest.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Index is an OCI image index (also index.json).
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Config is the image configuration blob.
type Config struct {
	Architecture string    `json:"architecture"`
	OS           string    `json:"os"`
	Created      time.Time `json:"created"`
	Config       struct {
		Entrypoint []string          `json:"Entrypoint,omitempty"`
		Cmd        []string          `json:"Cmd,omitempty"`
		Env        []string          `json:"Env,omitempty"`
		Labels     map[string]string `json:"Labels,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

type blob struct {
	digest string
	data   []byte
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{digest: "sha256:" + hex.EncodeToString(sum[:]), data: data}
}

// epoch is the timestamp of every file and of the image, for reproducible
// output.
var epoch = time.Unix(0, 0).UTC()

// Layer returns the uncompressed tar of files, with parent directories,
// sorted, owned by root, timestamps at the epoch.
func Layer(files []File) ([]byte, error) {
	dirs := map[string]bool{}
	byPath := map[string]File{}
	for _, f := range files {
		p := path.Clean("/" + f.Path)
		if p == "/" {
			return nil, fmt.Errorf("ociimage: bad file path %q", f.Path)
		}
		if _, dup := byPath[p]; dup {
			return nil, fmt.Errorf("ociimage: %s listed twice", p)
		}
		byPath[p] = f
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	var names []string
	for d := range dirs {
		names = append(names, d+"/")
	}
	for p := range byPath {
		names = append(names, p)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		h := &tar.Header{Name: strings.TrimPrefix(n, "/"), ModTime: epoch, Uname: "root", Gname: "root", Format: tar.FormatPAX}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		} else {
			f := byPath[n]
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, f.Mode&0o7777, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, fmt.Errorf("ociimage: %w", err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write(byPath[n].Data); err != nil {
				return nil, fmt.Errorf("ociimage: %w", err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("ociimage: %w", err)
	}
	return buf.Bytes(), nil
}

func gz(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	zw.ModTime = epoch // a zero header: reproducible
	if _, err := zw.Write(data); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Write writes the image as an OCI layout tar to w: index.json points to an
// image index (platform linux/<arch>) that points to the manifest.
func Write(w io.Writer, img *Image) error {
	if img.Name == "" || !strings.Contains(img.Name, ":") {
		return fmt.Errorf("ociimage: image name %q needs a tag", img.Name)
	}
	arch := img.Arch
	if arch == "" {
		arch = "amd64"
	}
	rawLayer, err := Layer(img.Files)
	if err != nil {
		return err
	}
	zLayer, err := gz(rawLayer)
	if err != nil {
		return fmt.Errorf("ociimage: %w", err)
	}
	layer := newBlob(zLayer)
	var cfg Config
	cfg.Architecture, cfg.OS, cfg.Created = arch, "linux", epoch
	cfg.Config.Entrypoint, cfg.Config.Cmd, cfg.Config.Labels = img.Entrypoint, img.Cmd, img.Labels
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cfg.RootFS.Type = "layers"
	cfg.RootFS.DiffIDs = []string{newBlob(rawLayer).digest}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("ociimage: %w", err)
	}
	config := newBlob(cfgJSON)
	man := Manifest{
		SchemaVersion: 2, MediaType: MediaManifest,
		Config: Descriptor{MediaType: MediaConfig, Digest: config.digest, Size: int64(len(config.data))},
		Layers: []Descriptor{{MediaType: MediaLayer, Digest: layer.digest, Size: int64(len(layer.data))}},
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return fmt.Errorf("ociimage: %w", err)
	}
	manifest := newBlob(manJSON)
	idx := Index{SchemaVersion: 2, MediaType: MediaIndex, Manifests: []Descriptor{{
		MediaType: MediaManifest, Digest: manifest.digest, Size: int64(len(manifest.data)),
		Platform: &Platform{Architecture: arch, OS: "linux"},
	}}}
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("ociimage: %w", err)
	}
	index := newBlob(idxJSON)
	tag := img.Name[strings.LastIndex(img.Name, ":")+1:]
	root := Index{SchemaVersion: 2, MediaType: MediaIndex, Manifests: []Descriptor{{
		MediaType: MediaIndex, Digest: index.digest, Size: int64(len(index.data)),
		Annotations: map[string]string{AnnotationRefName: tag, AnnotationImageName: img.Name},
	}}}
	rootJSON, err := json.Marshal(root)
	if err != nil {
		return fmt.Errorf("ociimage: %w", err)
	}

	tw := tar.NewWriter(w)
	add := func(name string, data []byte) error {
		h := &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: epoch, Format: tar.FormatPAX}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("ociimage: %w", err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("ociimage: %w", err)
		}
		return nil
	}
	if err := add("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := add("index.json", rootJSON); err != nil {
		return err
	}
	for _, b := range []blob{layer, config, manifest, index} {
		if err := add("blobs/sha256/"+strings.TrimPrefix(b.digest, "sha256:"), b.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("ociimage: %w", err)
	}
	return nil
}
