package demo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// TierRoleNames are the ClusterRoles the operator binds by default, one
// per tier.
func TierRoleNames() []string {
	names := make([]string, len(v1.Tiers))
	for i, t := range v1.Tiers {
		names[i] = v1.DefaultClusterRole(t)
	}
	return names
}

// LoadTierRoles reads the tier ClusterRoles from the YAML files of dir
// (config/rbac/tiers: every *.yaml but kustomization.yaml, several documents
// per file allowed). It returns the roles found by name, and an error for
// each tier role that is missing or unusable (not labelled bindable, no
// rules, a file that does not parse).
func LoadTierRoles(dir string) (map[string]*rbacv1.ClusterRole, []error) {
	roles := map[string]*rbacv1.ClusterRole{}
	var problems []error
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no *.yaml files in %s", dir)
	}
	if _, statErr := os.Stat(dir); statErr != nil {
		err = statErr
	}
	if err != nil {
		return roles, []error{fmt.Errorf("reading tier ClusterRoles: %w", err)}
	}
	sort.Strings(files)
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			problems = append(problems, err)
			continue
		}
		r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := r.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", f, err))
				break
			}
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal(doc, &head); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", f, err))
				continue
			}
			if head.Kind == "" && head.APIVersion == "" {
				continue // only comments
			}
			if head.Kind != "ClusterRole" || head.APIVersion != rbacv1.SchemeGroupVersion.String() {
				continue
			}
			role := &rbacv1.ClusterRole{}
			if err := yaml.UnmarshalStrict(doc, role); err != nil {
				problems = append(problems, fmt.Errorf("%s: %w", f, err))
				continue
			}
			roles[role.Name] = role
		}
	}
	for _, name := range TierRoleNames() {
		role, ok := roles[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Errorf("ClusterRole %s not found in %s", name, dir))
		case role.Labels[v1.LabelBindable] != "true":
			problems = append(problems, fmt.Errorf("ClusterRole %s in %s is not labelled %s=true", name, dir, v1.LabelBindable))
			delete(roles, name)
		case len(role.Rules) == 0 && role.AggregationRule == nil:
			problems = append(problems, fmt.Errorf("ClusterRole %s in %s has no rules", name, dir))
			delete(roles, name)
		}
	}
	return roles, problems
}

// InstallTierRoles creates the three tier ClusterRoles from dir
// (config/rbac/tiers) and returns their names. A role missing there or
// unusable is an error: the demo runs with the roles an install ships,
// never with stand-ins that would hide a broken config/rbac/tiers.
func InstallTierRoles(ctx context.Context, c client.Client, dir string) ([]string, error) {
	roles, problems := LoadTierRoles(dir)
	if len(problems) > 0 {
		return nil, fmt.Errorf("tier ClusterRoles in %s: %w", dir, errors.Join(problems...))
	}
	names := TierRoleNames()
	for _, name := range names {
		if err := c.Create(ctx, roles[name].DeepCopy()); err != nil && !apierrors.IsAlreadyExists(err) {
			return nil, fmt.Errorf("creating ClusterRole %s: %w", name, err)
		}
	}
	return names, nil
}
