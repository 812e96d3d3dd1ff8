package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// TestParseStage reads the project's Dockerfile the way make image does.
func TestParseStage(t *testing.T) {
	src, err := os.ReadFile("../../../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStage(string(src), "manager", map[string]string{"VERSION": "v9.9.9", "REVISION": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if st.user != "65532:65532" || !reflect.DeepEqual(st.entrypoint, []string{"/manager"}) || st.copyTo != "/manager" || st.workdir != "/" {
		t.Errorf("stage manager: %+v", st)
	}
	if st.labels["org.opencontainers.image.version"] != "v9.9.9" || st.labels["org.opencontainers.image.revision"] != "abc" {
		t.Errorf("labels %v: the build args are not substituted", st.labels)
	}
	if _, err := parseStage("FROM gcr.io/distroless/static:nonroot AS x\nRUN true\n", "x", nil); err == nil {
		t.Error("a RUN in the stage: want an error, the builder cannot reproduce it")
	}
	if _, err := parseStage(string(src), "nosuchstage", nil); err == nil {
		t.Error("a missing stage: want an error")
	}
}

// TestReproducible: the same binary and epoch give the same digest.
func TestReproducible(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "manager")
	if err := os.WriteFile(bin, []byte("\x7fELF not really"), 0o755); err != nil {
		t.Fatal(err)
	}
	st := &stage{labels: map[string]string{"a": "b"}, user: "65532:65532", workdir: "/", entrypoint: []string{"/manager"}, copyTo: "/manager"}
	created := v1.Time{Time: time.Unix(1700000000, 0).UTC()}
	var digests []v1.Hash
	var archives [][]byte
	for i := 0; i < 2; i++ {
		img, err := buildImage(st, "linux", "amd64", bin, created)
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
		// And the archive of it.
		out := filepath.Join(t.TempDir(), "img.tar")
		if err := writeArchive(out, img, name.MustParseReference("example.com/x:v1").(name.Tag), 1700000000); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		archives = append(archives, b)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds: %s and %s", digests[0], digests[1])
	}
	if !reflect.DeepEqual(archives[0], archives[1]) {
		t.Error("two builds: the tarballs differ")
	}
}
