// Command ociimage builds the image a stage of the project's Dockerfile
// describes, without Docker and without pulling a base image: one layer on
// an empty image holding what gcr.io/distroless/static:nonroot provides that
// a static Go binary needs (/etc/passwd and /etc/group with the nonroot
// user, /tmp, /home/nonroot) and the binary, with the stage's LABELs, USER,
// WORKDIR and ENTRYPOINT. It writes OCI image layouts as tarballs that
// `ctr images import`, `kind load image-archive`, `skopeo copy
// oci-archive:...` and `crane push` read:
//
//	OUT/NAME.tar                 one index of every platform (what a release pushes and pins by digest)
//	OUT/NAME_OS_ARCH.tar         one platform each
//	OUT/NAME_OS_ARCH.spdx.json   an SPDX 2.3 SBOM of each platform's binary (Go modules it was built from)
//	OUT/NAME.digest              the index's digest, sha256:...
//
// The build is reproducible: every timestamp is --epoch (make passes the
// commit's time as SOURCE_DATE_EPOCH), files are written in a fixed order
// with fixed owners, so the same binaries give the same digests.
//
//	ociimage --dockerfile Dockerfile --target manager --ref ghcr.io/partnerops/entitlement-operator:v0.2.0 \
//	  --binary linux/amd64=bin/image/linux_amd64/manager --binary linux/arm64=... \
//	  --build-arg VERSION=v0.2.0 --build-arg REVISION=$(git rev-parse HEAD) --epoch 1765000000 --out bin/image
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// distroless is the only base image this builder reproduces.
const distroless = "gcr.io/distroless/static:nonroot"

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "ociimage:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		dockerfile, target, ref, out, base string
		epoch                              int64
		binaries, buildArgs                multiFlag
	)
	flag.StringVar(&dockerfile, "dockerfile", "Dockerfile", "Dockerfile whose stage describes the image")
	flag.StringVar(&target, "target", "", "the stage (FROM ... AS TARGET)")
	flag.StringVar(&ref, "ref", "", "image reference the tarballs name, REPOSITORY:TAG")
	flag.StringVar(&out, "out", "", "output directory")
	flag.StringVar(&base, "name", "", "file name of the tarballs (default: the repository's last path element)")
	flag.Int64Var(&epoch, "epoch", -1, "Unix time of every timestamp in the image (SOURCE_DATE_EPOCH)")
	flag.Var(&binaries, "binary", "OS/ARCH=FILE: the binary the stage copies, built for that platform (repeat per platform)")
	flag.Var(&buildArgs, "build-arg", "NAME=VALUE for the stage's ARGs (repeatable)")
	flag.Parse()
	if target == "" || ref == "" || out == "" || len(binaries) == 0 || epoch < 0 {
		flag.Usage()
		return errors.New("--target, --ref, --out, --epoch and at least one --binary are required")
	}
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return fmt.Errorf("--ref %q: %w", ref, err)
	}
	if base == "" {
		base = path.Base(tag.RepositoryStr())
	}
	args := map[string]string{}
	for _, a := range buildArgs {
		k, v, _ := strings.Cut(a, "=")
		args[k] = v
	}
	src, err := os.ReadFile(dockerfile)
	if err != nil {
		return err
	}
	st, err := parseStage(string(src), target, args)
	if err != nil {
		return fmt.Errorf("%s: %w", dockerfile, err)
	}
	created := v1.Time{Time: time.Unix(epoch, 0).UTC()}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}

	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, b := range binaries {
		plat, file, ok := strings.Cut(b, "=")
		osName, arch, ok2 := strings.Cut(plat, "/")
		if !ok || !ok2 {
			return fmt.Errorf("--binary %q: want OS/ARCH=FILE", b)
		}
		img, err := buildImage(st, osName, arch, file, created)
		if err != nil {
			return fmt.Errorf("%s: %w", plat, err)
		}
		digest, err := img.Digest()
		if err != nil {
			return err
		}
		stem := fmt.Sprintf("%s_%s_%s", base, osName, arch)
		if err := writeArchive(filepath.Join(out, stem+".tar"), img, tag, epoch); err != nil {
			return err
		}
		if err := writeSBOM(filepath.Join(out, stem+".spdx.json"), file, tag, digest, plat, created); err != nil {
			return err
		}
		fmt.Printf("%s %s@%s\n", plat, tag.Repository.Name(), digest)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add:        img,
			Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: osName, Architecture: arch}},
		})
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	if err := writeArchive(filepath.Join(out, base+".tar"), idx, tag, epoch); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, base+".digest"), []byte(digest.String()+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Printf("index %s@%s (%s)\n", tag.Repository.Name(), digest, tag)
	return nil
}

// stage is what the builder takes from a Dockerfile stage.
type stage struct {
	labels     map[string]string
	user       string
	workdir    string
	entrypoint []string
	env        []string
	copyTo     string // where the stage's one COPY --from puts the binary
}

// parseStage reads the stage named target. It knows the instructions a
// stage on distroless uses (ARG, LABEL, ENV, USER, WORKDIR, ENTRYPOINT in
// exec form, one COPY --from) and refuses anything else, so that the
// Dockerfile cannot grow a step this builder would silently leave out.
func parseStage(src, target string, buildArgs map[string]string) (*stage, error) {
	var (
		in    bool
		found bool
		st    = &stage{labels: map[string]string{}, workdir: "/"}
		vars  = map[string]string{}
	)
	for _, line := range logicalLines(src) {
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			f := strings.Fields(rest)
			in = len(f) == 3 && strings.EqualFold(f[1], "AS") && f[2] == target
			if in {
				if f[0] != distroless {
					return nil, fmt.Errorf("stage %s is FROM %s; this builder reproduces only %s", target, f[0], distroless)
				}
				found = true
			}
			continue
		}
		if !in {
			continue
		}
		switch strings.ToUpper(instr) {
		case "ARG":
			k, v, hasDefault := strings.Cut(rest, "=")
			if bv, ok := buildArgs[k]; ok {
				v = bv
			} else if !hasDefault {
				v = ""
			}
			vars[k] = unquote(v)
		case "LABEL":
			kvs, err := keyValues(rest)
			if err != nil {
				return nil, fmt.Errorf("LABEL %s: %w", rest, err)
			}
			for _, kv := range kvs {
				st.labels[kv[0]] = expand(kv[1], vars)
			}
		case "ENV":
			kvs, err := keyValues(rest)
			if err != nil {
				return nil, fmt.Errorf("ENV %s: %w", rest, err)
			}
			for _, kv := range kvs {
				st.env = append(st.env, kv[0]+"="+expand(kv[1], vars))
			}
		case "USER":
			st.user = expand(rest, vars)
		case "WORKDIR":
			st.workdir = expand(rest, vars)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &st.entrypoint); err != nil {
				return nil, fmt.Errorf("ENTRYPOINT must be in exec form (a JSON array): %w", err)
			}
		case "COPY":
			f := strings.Fields(rest)
			if len(f) != 3 || !strings.HasPrefix(f[0], "--from=") || st.copyTo != "" {
				return nil, fmt.Errorf("COPY %s: the builder reproduces one COPY --from=STAGE SRC DEST of the binary", rest)
			}
			st.copyTo = f[2]
		default:
			return nil, fmt.Errorf("stage %s: %s is not reproduced by this builder", target, instr)
		}
	}
	switch {
	case !found:
		return nil, fmt.Errorf("no stage FROM %s AS %s", distroless, target)
	case st.copyTo == "" || len(st.entrypoint) == 0 || st.user == "":
		return nil, fmt.Errorf("stage %s needs a COPY --from, a USER and an ENTRYPOINT", target)
	}
	return st, nil
}

// logicalLines joins continuation lines and drops comments and blanks.
func logicalLines(src string) []string {
	var out []string
	var cur strings.Builder
	for _, l := range strings.Split(src, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "#") || (t == "" && cur.Len() == 0) {
			continue
		}
		if strings.HasSuffix(t, "\\") {
			cur.WriteString(strings.TrimSuffix(t, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(t)
		if s := strings.TrimSpace(cur.String()); s != "" {
			out = append(out, s)
		}
		cur.Reset()
	}
	return out
}

// keyValues splits `k1=v1 k2="v 2"` into pairs.
func keyValues(s string) ([][2]string, error) {
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("want KEY=VALUE at %q", s)
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			for end < len(rest) && (rest[end] != '"' || rest[end-1] == '\\') {
				end++
			}
			if end == len(rest) {
				return nil, fmt.Errorf("unterminated quote at %q", rest)
			}
			v, s = strings.ReplaceAll(rest[1:end], `\"`, `"`), rest[end+1:]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out = append(out, [2]string{unquote(k), v})
	}
	return out, nil
}

func unquote(s string) string { return strings.Trim(s, `"`) }

func expand(s string, vars map[string]string) string {
	return os.Expand(s, func(k string) string { return vars[k] })
}

// buildImage puts the binary and distroless' user files in one layer.
func buildImage(st *stage, osName, arch, binary string, created v1.Time) (v1.Image, error) {
	bin, err := os.ReadFile(binary)
	if err != nil {
		return nil, err
	}
	layerTar, err := rootfs(st, bin, created.Time)
	if err != nil {
		return nil, err
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression) // no name, no mtime: deterministic
	if _, err := zw.Write(layerTar); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(gz.Bytes())), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   created,
			CreatedBy: fmt.Sprintf("ociimage: %s on %s's user files", st.copyTo, distroless),
			Comment:   "hack/tools/cmd/ociimage",
		},
	})
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Created = osName, arch, created
	cf.Config = v1.Config{
		User:       st.user,
		WorkingDir: st.workdir,
		Entrypoint: st.entrypoint,
		Labels:     st.labels,
		Env:        append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, st.env...),
	}
	return mutate.ConfigFile(img, cf)
}

// rootfs is the layer: distroless/static:nonroot's users and directories
// and the binary, in a fixed order with fixed owners and times.
func rootfs(st *stage, bin []byte, mtime time.Time) ([]byte, error) {
	type entry struct {
		name     string
		mode     int64
		uid, gid int
		data     []byte
		dir      bool
	}
	entries := []entry{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")},
		{name: "etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, uid: 65532, gid: 65532, dir: true},
		{name: "tmp/", mode: 0o1777, dir: true},
	}
	// The binary and the directories above it.
	p := strings.TrimPrefix(path.Clean(st.copyTo), "/")
	for d := path.Dir(p); d != "."; d = path.Dir(d) {
		entries = append(entries, entry{name: d + "/", mode: 0o755, dir: true})
	}
	entries = append(entries, entry{name: p, mode: 0o755, data: bin})
	sort.SliceStable(entries, func(i, j int) bool { return entries[i].name < entries[j].name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	seen := map[string]bool{}
	for _, e := range entries {
		if seen[e.name] {
			continue
		}
		seen[e.name] = true
		h := &tar.Header{
			Name: e.name, Mode: e.mode, Uid: e.uid, Gid: e.gid, ModTime: mtime,
			Typeflag: tar.TypeReg, Size: int64(len(e.data)), Format: tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeArchive writes an OCI image layout holding img (an image or an
// index) as a tarball. index.json names it twice, by tag and by digest
// (io.containerd.image.name, which `ctr images import` reads), so that a
// Pod that pins the image by digest finds it after an import.
func writeArchive(file string, img mutate.Appendable, tag name.Tag, epoch int64) error {
	dir, err := os.MkdirTemp(filepath.Dir(file), ".layout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	d, ok := img.(interface{ Digest() (v1.Hash, error) })
	if !ok {
		return errors.New("not a digestible image")
	}
	digest, err := d.Digest()
	if err != nil {
		return err
	}
	for _, ref := range []string{tag.String(), tag.Repository.Name() + "@" + digest.String()} {
		ann := layout.WithAnnotations(map[string]string{
			"io.containerd.image.name":          ref,
			"org.opencontainers.image.ref.name": tag.TagStr(),
		})
		switch x := img.(type) {
		case v1.ImageIndex:
			err = lp.AppendIndex(x, ann)
		case v1.Image:
			err = lp.AppendImage(x, ann)
		}
		if err != nil {
			return err
		}
	}
	return tarDir(dir, file, time.Unix(epoch, 0))
}

// tarDir archives a directory's files in name order with fixed metadata.
func tarDir(dir, file string, mtime time.Time) error {
	var names []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		names = append(names, p)
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	tmp := file + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	for _, p := range names {
		rel, _ := filepath.Rel(dir, p)
		info, err := os.Stat(p)
		if err != nil {
			return err
		}
		h := &tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, ModTime: mtime, Typeflag: tar.TypeReg, Size: info.Size(), Format: tar.FormatPAX}
		if info.IsDir() {
			h.Name, h.Mode, h.Typeflag, h.Size = h.Name+"/", 0o755, tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if !info.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if _, err := tw.Write(b); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}

// writeSBOM writes an SPDX 2.3 document of the Go modules the binary was
// built from (its embedded build information), one package each, with a
// purl, plus the Go standard library.
func writeSBOM(file, binary string, tag name.Tag, digest v1.Hash, platform string, created v1.Time) error {
	bi, err := buildinfo.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("%s: %w", binary, err)
	}
	type pkg struct {
		SPDXID           string              `json:"SPDXID"`
		Name             string              `json:"name"`
		VersionInfo      string              `json:"versionInfo"`
		DownloadLocation string              `json:"downloadLocation"`
		FilesAnalyzed    bool                `json:"filesAnalyzed"`
		Checksums        []map[string]string `json:"checksums,omitempty"`
		ExternalRefs     []map[string]string `json:"externalRefs"`
	}
	id := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return "SPDXRef-Package-" + hex.EncodeToString(h[:8])
	}
	purl := func(p, v string) []map[string]string {
		return []map[string]string{{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:golang/" + p + "@" + v}}
	}
	binSum := sha256.New()
	if f, err := os.Open(binary); err == nil {
		_, _ = io.Copy(binSum, f)
		f.Close()
	}
	mainVersion := tag.TagStr()
	pkgs := []pkg{{
		SPDXID: id(bi.Main.Path), Name: bi.Main.Path, VersionInfo: mainVersion, DownloadLocation: "NOASSERTION",
		Checksums:    []map[string]string{{"algorithm": "SHA256", "checksumValue": hex.EncodeToString(binSum.Sum(nil))}},
		ExternalRefs: purl(bi.Main.Path, mainVersion),
	}, {
		SPDXID: id("stdlib"), Name: "stdlib", VersionInfo: bi.GoVersion, DownloadLocation: "https://go.dev/dl/",
		ExternalRefs: purl("stdlib", bi.GoVersion),
	}}
	rels := []map[string]string{{"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": pkgs[0].SPDXID},
		{"spdxElementId": pkgs[0].SPDXID, "relationshipType": "DEPENDS_ON", "relatedSpdxElement": pkgs[1].SPDXID}}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		p := pkg{SPDXID: id(d.Path), Name: d.Path, VersionInfo: d.Version, DownloadLocation: "NOASSERTION", ExternalRefs: purl(d.Path, d.Version)}
		pkgs = append(pkgs, p)
		rels = append(rels, map[string]string{"spdxElementId": pkgs[0].SPDXID, "relationshipType": "DEPENDS_ON", "relatedSpdxElement": p.SPDXID})
	}
	doc := map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              fmt.Sprintf("%s (%s)", tag, platform),
		"documentNamespace": fmt.Sprintf("https://%s/sbom/%s", tag.Repository.Name(), digest),
		"creationInfo": map[string]any{
			"created":  created.UTC().Format(time.RFC3339),
			"creators": []string{"Tool: entitlement-operator hack/tools/cmd/ociimage"},
		},
		"packages":      pkgs,
		"relationships": rels,
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}
