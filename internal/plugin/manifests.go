package plugin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// manifest reports whether a file name is one `diff` reads.
func manifest(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml", ".json":
		return true
	}
	return false
}

// objects gathers the Partners and DistributorContracts of a set of
// manifests; every other object is skipped.
type objects struct {
	contracts []v1.DistributorContract
	partners  []v1.Partner
	seen      map[string]string // kind/name: where it was read
}

func (o *objects) world() world { return newWorld(o.contracts, o.partners) }

// readPaths reads files ("-" is stdin), and directories recursively
// (*.yaml, *.yml, *.json; directories whose names start with "." are
// skipped).
func readPaths(stdin io.Reader, paths ...string) (world, error) {
	var o objects
	for _, root := range paths {
		if root == "-" && stdin != nil {
			b, err := io.ReadAll(stdin)
			if err == nil {
				err = o.add("stdin", b)
			}
			if err != nil {
				return world{}, err
			}
			continue
		}
		err := filepath.WalkDir(root, func(path string, e fs.DirEntry, err error) error {
			switch {
			case err != nil:
				return err
			case e.IsDir() && path != root && strings.HasPrefix(e.Name(), "."):
				return filepath.SkipDir
			case e.IsDir() || (path != root && !manifest(path)):
				return nil
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return o.add(path, b)
		})
		if err != nil {
			return world{}, err
		}
	}
	return o.world(), nil
}

// readGit reads the manifests of a git revision under pathspecs (all of
// the tree without any), with git in dir.
func readGit(ctx context.Context, dir, rev string, pathspecs []string) (world, error) {
	ls, err := git(ctx, dir, nil, append([]string{"ls-tree", "-r", "-z", "--full-name", rev, "--"}, pathspecs...)...)
	if err != nil {
		return world{}, err
	}
	var names, ids []string
	for entry := range strings.SplitSeq(strings.TrimSuffix(string(ls), "\x00"), "\x00") {
		// <mode> SP <type> SP <object> TAB <path>
		meta, path, ok := strings.Cut(entry, "\t")
		f := strings.Fields(meta)
		if !ok || len(f) != 3 || f[1] != "blob" || !manifest(path) {
			continue
		}
		names, ids = append(names, rev+":"+path), append(ids, f[2])
	}
	var o objects
	if len(ids) == 0 {
		return o.world(), nil
	}
	out, err := git(ctx, dir, strings.NewReader(strings.Join(ids, "\n")+"\n"), "cat-file", "--batch")
	if err != nil {
		return world{}, err
	}
	r := bufio.NewReader(bytes.NewReader(out))
	for _, name := range names {
		// <object> SP <type> SP <size> LF <contents> LF
		header, err := r.ReadString('\n')
		if err != nil {
			return world{}, fmt.Errorf("git cat-file: %w", err)
		}
		f := strings.Fields(header)
		size, err := strconv.Atoi(f[len(f)-1])
		if err != nil || len(f) != 3 {
			return world{}, fmt.Errorf("git cat-file: unexpected %q", header)
		}
		b := make([]byte, size+1)
		if _, err := io.ReadFull(r, b); err != nil {
			return world{}, fmt.Errorf("git cat-file: %w", err)
		}
		if err := o.add(name, b[:size]); err != nil {
			return world{}, err
		}
	}
	return o.world(), nil
}

// git runs git in dir and returns its output; its error says what git said.
func git(ctx context.Context, dir string, stdin io.Reader, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir, cmd.Stdin = dir, stdin
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("git %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// add reads every YAML or JSON document of a file.
func (o *objects) add(file string, data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", file, err)
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return fmt.Errorf("%s (document %d): %w", file, i, err)
		}
		if err := o.object(fmt.Sprintf("%s (document %d)", file, i), j); err != nil {
			return err
		}
	}
}

// object keeps a Partner or DistributorContract, read strictly (a
// misspelt field would silently change the answer), and the items of a
// List.
func (o *objects) object(where string, j []byte) error {
	var head struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Items      []json.RawMessage `json:"items"`
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil
	}
	if err := json.Unmarshal(j, &head); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if strings.HasSuffix(head.Kind, "List") && head.Items != nil {
		for i, item := range head.Items {
			if err := o.object(fmt.Sprintf("%s item %d", where, i+1), item); err != nil {
				return err
			}
		}
		return nil
	}
	group, version, _ := strings.Cut(head.APIVersion, "/")
	if group != v1.GroupVersion.Group || (head.Kind != "Partner" && head.Kind != "DistributorContract") {
		return nil
	}
	if version != v1.GroupVersion.Version {
		return fmt.Errorf("%s: %s %s: this plugin reads %s", where, head.APIVersion, head.Kind, v1.GroupVersion)
	}
	var name string
	var err error
	if head.Kind == "Partner" {
		var p v1.Partner
		err = strict(j, &p)
		name = p.Name
		o.partners = append(o.partners, p)
	} else {
		var c v1.DistributorContract
		err = strict(j, &c)
		name = c.Name
		o.contracts = append(o.contracts, c)
	}
	switch key := head.Kind + "/" + name; {
	case err != nil:
		return fmt.Errorf("%s: %s: %w", where, head.Kind, err)
	case name == "":
		return fmt.Errorf("%s: %s without metadata.name", where, head.Kind)
	case o.seen[key] != "":
		return fmt.Errorf("%s: %s %s is also in %s", where, head.Kind, name, o.seen[key])
	default:
		if o.seen == nil {
			o.seen = map[string]string{}
		}
		o.seen[key] = where
	}
	return nil
}

func strict(j []byte, into any) error {
	d := json.NewDecoder(bytes.NewReader(j))
	d.DisallowUnknownFields()
	return d.Decode(into)
}
