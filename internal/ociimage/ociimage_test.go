package ociimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

func readTar(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
}

// resolve checks a descriptor against its blob and returns the blob.
func resolve(t *testing.T, files map[string][]byte, d Descriptor) []byte {
	t.Helper()
	hexDigest, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		t.Fatalf("digest %q", d.Digest)
	}
	b, ok := files["blobs/sha256/"+hexDigest]
	if !ok {
		t.Fatalf("blob %s missing", d.Digest)
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != hexDigest || int64(len(b)) != d.Size {
		t.Fatalf("blob %s: digest or size mismatch (size %d vs %d)", d.Digest, len(b), d.Size)
	}
	return b
}

func TestWriteLayout(t *testing.T) {
	img := &Image{
		Name:       "docker.io/lklog/memlogd:dev",
		Files:      []File{{Path: "/usr/bin/memlogd", Mode: 0o755, Data: []byte("ELF")}, {Path: "etc/init.d/memlogd", Mode: 0o755, Data: []byte("#!/bin/sh\n")}},
		Entrypoint: []string{"/usr/bin/memlogd"},
		Labels:     map[string]string{"org.mobyproject.config": `{"binds":["/var/run:/var/run"]}`},
	}
	var a, b bytes.Buffer
	if err := Write(&a, img); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, img); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("output is not reproducible")
	}
	files := readTar(t, a.Bytes())
	if string(files["oci-layout"]) != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", files["oci-layout"])
	}
	var root Index
	if err := json.Unmarshal(files["index.json"], &root); err != nil || len(root.Manifests) != 1 {
		t.Fatalf("index.json: %v %+v", err, root)
	}
	top := root.Manifests[0]
	if top.Annotations[AnnotationImageName] != img.Name || top.Annotations[AnnotationRefName] != "dev" || top.MediaType != MediaIndex {
		t.Fatalf("root descriptor = %+v", top)
	}
	var idx Index
	if err := json.Unmarshal(resolve(t, files, top), &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("image index: %v %+v", err, idx)
	}
	md := idx.Manifests[0]
	if md.Platform == nil || md.Platform.OS != "linux" || md.Platform.Architecture != "amd64" || md.MediaType != MediaManifest {
		t.Fatalf("manifest descriptor = %+v", md)
	}
	var man Manifest
	if err := json.Unmarshal(resolve(t, files, md), &man); err != nil || len(man.Layers) != 1 {
		t.Fatalf("manifest: %v %+v", err, man)
	}
	var cfg Config
	if err := json.Unmarshal(resolve(t, files, man.Config), &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Config.Entrypoint[0] != "/usr/bin/memlogd" || cfg.Config.Labels["org.mobyproject.config"] == "" {
		t.Fatalf("config = %+v", cfg)
	}
	zr, err := gzip.NewReader(bytes.NewReader(resolve(t, files, man.Layers[0])))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if cfg.RootFS.DiffIDs[0] != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Fatal("diff_id does not match the uncompressed layer")
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	var names []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Name == "usr/bin/memlogd" && h.Mode != 0o755 {
			t.Errorf("mode of memlogd = %o", h.Mode)
		}
	}
	if got := strings.Join(names, " "); got != "etc/ etc/init.d/ etc/init.d/memlogd usr/ usr/bin/ usr/bin/memlogd" {
		t.Fatalf("layer entries: %s", got)
	}
}

func TestWriteErrors(t *testing.T) {
	if err := Write(io.Discard, &Image{Name: "lklog/x", Files: []File{{Path: "/a"}}}); err == nil {
		t.Error("name without tag accepted")
	}
	if err := Write(io.Discard, &Image{Name: "lklog/x:1", Files: []File{{Path: "/a"}, {Path: "a"}}}); err == nil {
		t.Error("duplicate path accepted")
	}
	if err := Write(io.Discard, &Image{Name: "lklog/x:1", Files: []File{{Path: "/"}}}); err == nil {
		t.Error("root path accepted")
	}
}
