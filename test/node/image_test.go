package node_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestImageMatchesDockerfile: the images make image builds without Docker
// have the entrypoint, user, working directory and labels the Dockerfile's
// stages give them, for every platform, and a static binary at the
// entrypoint.
func TestImageMatchesDockerfile(t *testing.T) {
	e := setup(t)
	dockerfile, err := os.ReadFile(filepath.Join(e.root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	args := map[string]string{"VERSION": e.version, "REVISION": os.Getenv("NODE_COMMIT")}
	for _, img := range []struct{ stage, file string }{
		{"manager", "entitlement-operator.tar"},
		{"probe", "entitlement-operator-probe.tar"},
	} {
		t.Run(img.stage, func(t *testing.T) {
			want := dockerfileStage(t, string(dockerfile), img.stage, args)
			layout := readLayout(t, filepath.Join(e.release, img.file))
			var index struct {
				Manifests []struct {
					Digest   string
					Platform struct{ OS, Architecture string }
				}
			}
			layout.json(t, layout.top(t), &index)
			if len(index.Manifests) != 2 {
				t.Fatalf("%s: %d platforms, want linux/amd64 and linux/arm64", img.file, len(index.Manifests))
			}
			for _, m := range index.Manifests {
				var manifest struct {
					Config struct{ Digest string }
					Layers []struct{ Digest string }
				}
				layout.json(t, m.Digest, &manifest)
				var cfg struct {
					OS, Architecture string
					Config           imageConfig
				}
				layout.json(t, manifest.Config.Digest, &cfg)
				if cfg.OS != m.Platform.OS || cfg.Architecture != m.Platform.Architecture {
					t.Errorf("%s/%s: config says %s/%s", m.Platform.OS, m.Platform.Architecture, cfg.OS, cfg.Architecture)
				}
				got := cfg.Config
				got.Env = nil
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s/%s: image config\n%+v\nDockerfile stage %s\n%+v", cfg.OS, cfg.Architecture, got, img.stage, want)
				}
				if cfg.Config.User != "65532:65532" {
					t.Errorf("user %q, want 65532:65532", cfg.Config.User)
				}
				files := layout.layerFiles(t, manifest.Layers[0].Digest)
				bin, ok := files[strings.TrimPrefix(want.Entrypoint[0], "/")]
				if !ok {
					t.Fatalf("no %s in the image", want.Entrypoint[0])
				}
				f, err := elf.NewFile(bytes.NewReader(bin))
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range f.Progs {
					if p.Type == elf.PT_INTERP {
						t.Errorf("%s/%s: %s is dynamically linked", cfg.OS, cfg.Architecture, want.Entrypoint[0])
					}
				}
				if !strings.Contains(string(files["etc/passwd"]), "nonroot:x:65532:65532") {
					t.Errorf("etc/passwd has no nonroot user 65532")
				}
			}
		})
	}
}

type imageConfig struct {
	User       string
	WorkingDir string
	Entrypoint []string
	Labels     map[string]string
	Env        []string
}

// dockerfileStage reads what a stage says about the image's configuration.
func dockerfileStage(t *testing.T, src, stage string, args map[string]string) imageConfig {
	t.Helper()
	src = regexp.MustCompile(`\\\n\s*`).ReplaceAllString(src, " ")
	var c imageConfig
	in := false
	label := regexp.MustCompile(`([\w.-]+)="([^"]*)"`)
	for _, l := range strings.Split(src, "\n") {
		instr, rest, _ := strings.Cut(strings.TrimSpace(l), " ")
		switch instr {
		case "FROM":
			in = strings.HasSuffix(rest, " AS "+stage)
			if in {
				c = imageConfig{Labels: map[string]string{}}
			}
		case "LABEL":
			if in {
				for _, m := range label.FindAllStringSubmatch(rest, -1) {
					c.Labels[m[1]] = os.Expand(m[2], func(k string) string { return args[k] })
				}
			}
		case "USER":
			if in {
				c.User = rest
			}
		case "WORKDIR":
			if in {
				c.WorkingDir = rest
			}
		case "ENTRYPOINT":
			if in {
				if err := json.Unmarshal([]byte(rest), &c.Entrypoint); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if c.User == "" || len(c.Entrypoint) == 0 || len(c.Labels) == 0 {
		t.Fatalf("no stage %s with USER, ENTRYPOINT and LABEL in the Dockerfile", stage)
	}
	return c
}

// layout is an OCI image layout read from a tarball: its files by name.
type layout map[string][]byte

func readLayout(t *testing.T, file string) layout {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readTar(t, f)
}

// readTar reads a tar stream's files by name.
func readTar(t *testing.T, r io.Reader) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
}

// top is the digest of what the layout's index.json names first.
func (l layout) top(t *testing.T) string {
	var idx struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(l["index.json"], &idx); err != nil || len(idx.Manifests) == 0 {
		t.Fatalf("index.json: %v", err)
	}
	return idx.Manifests[0].Digest
}

func (l layout) blob(t *testing.T, digest string) []byte {
	t.Helper()
	b, ok := l["blobs/"+strings.Replace(digest, ":", "/", 1)]
	if !ok {
		t.Fatalf("no blob %s", digest)
	}
	return b
}

func (l layout) json(t *testing.T, digest string, v any) {
	t.Helper()
	if err := json.Unmarshal(l.blob(t, digest), v); err != nil {
		t.Fatalf("%s: %v", digest, err)
	}
}

func (l layout) layerFiles(t *testing.T, digest string) map[string][]byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(l.blob(t, digest)))
	if err != nil {
		t.Fatal(err)
	}
	return readTar(t, zr)
}

// TestChartProbeImage: the chart's helm test runs the probe image make
// image builds beside the manager's, at the manager's tag (test/install
// checks that config/manager and the chart name the same manager image).
func TestChartProbeImage(t *testing.T) {
	var values struct {
		Image struct{ Repository string }
		Test  struct {
			Image struct{ Repository, Tag string }
		}
	}
	b, err := os.ReadFile("../../dist/chart/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	if values.Test.Image.Repository != values.Image.Repository+"-probe" || values.Test.Image.Tag != "" {
		t.Errorf("the chart's test image %s:%s is not the probe make image builds (%s-probe, the manager's tag)",
			values.Test.Image.Repository, values.Test.Image.Tag, values.Image.Repository)
	}
}
