package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lklog/lklog/internal/lkschema"
	"github.com/lklog/lklog/internal/ociimage"
)

// imageLabels reads the labels of the image in an OCI layout tar that
// mkimage wrote, through index.json, the image index and the manifest.
func imageLabels(t *testing.T, tarball string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", tarball, err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	blob := func(d ociimage.Descriptor) []byte {
		b, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok {
			t.Fatalf("%s: blob %s missing", tarball, d.Digest)
		}
		return b
	}
	var root, index ociimage.Index
	var man ociimage.Manifest
	var cfg ociimage.Config
	if err := json.Unmarshal(files["index.json"], &root); err != nil || len(root.Manifests) != 1 {
		t.Fatalf("%s: index.json: %v %+v", tarball, err, root)
	}
	if err := json.Unmarshal(blob(root.Manifests[0]), &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("%s: image index: %v", tarball, err)
	}
	if err := json.Unmarshal(blob(index.Manifests[0]), &man); err != nil {
		t.Fatalf("%s: manifest: %v", tarball, err)
	}
	if err := json.Unmarshal(blob(man.Config), &cfg); err != nil {
		t.Fatalf("%s: config: %v", tarball, err)
	}
	return cfg.Config.Labels
}

// TestEveryLabelLinuxKitAccepts runs `make images` for every package in
// pkg/ (placeholder binaries: the label does not depend on them) and checks
// each image's org.mobyproject.config label with the rules `linuxkit build`
// applies to labels. A package added later is covered without a change
// here.
func TestEveryLabelLinuxKitAccepts(t *testing.T) {
	repo := filepath.Join("..", "..")
	pkgs, err := filepath.Glob(filepath.Join(repo, "pkg", "*", "build.yml"))
	if err != nil || len(pkgs) == 0 {
		t.Fatalf("no packages: %v", err)
	}
	bin := t.TempDir()
	cmds, err := filepath.Glob(filepath.Join(repo, "pkg", "*", "cmd", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		if err := os.WriteFile(filepath.Join(bin, filepath.Base(c)), []byte("placeholder"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	if err := run(repo, bin, out, "test"); err != nil {
		t.Fatalf("mkimage: %v", err)
	}
	labelled := 0
	for _, by := range pkgs {
		name := filepath.Base(filepath.Dir(by))
		tarball := filepath.Join(out, name+".tar")
		labels := imageLabels(t, tarball)
		label, ok := labels["org.mobyproject.config"]
		if !ok {
			continue // no config in build.yml: LinuxKit adds no label either
		}
		labelled++
		v, err := lkschema.ParseJSON([]byte(label))
		if err != nil {
			t.Errorf("%s: label %s: %v", name, label, err)
			continue
		}
		if es := lkschema.ValidateLabel(v); es != nil {
			t.Errorf("%s: linuxkit build would refuse the label %s:\n%v", name, label, es)
		}
	}
	if labelled == 0 {
		t.Error("no image has a config label; the packages with a build.yml config must have one")
	}
}
