// Package crdschema reads the generated CRDs and walks their schemas, for
// the API reference generator (hack/apidocs) and the admission tests
// (test/api): one reader, one walk, one path syntax.
package crdschema

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"
)

// Read reads every *.yaml file in dir as a CustomResourceDefinition
// (strictly: an unknown field is an error), sorted by kind.
func Read(dir string) ([]*apiextensionsv1.CustomResourceDefinition, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRD YAML files in %s", dir)
	}
	var crds []*apiextensionsv1.CustomResourceDefinition
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := yaml.UnmarshalStrict(b, crd); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			return nil, fmt.Errorf("%s: kind %q, want CustomResourceDefinition", f, crd.Kind)
		}
		crds = append(crds, crd)
	}
	sort.Slice(crds, func(i, j int) bool { return crds[i].Spec.Names.Kind < crds[j].Spec.Names.Kind })
	return crds, nil
}

// Path syntax below a field: list items are path[], map values path.*.
func ItemPath(path string) string  { return path + "[]" }
func ValuePath(path string) string { return path + ".*" }

// PropertyPath is the path of an object property.
func PropertyPath(path, name string) string { return strings.TrimPrefix(path+"."+name, ".") }

// Visit calls f for s at path and for every schema below it, depth first,
// object properties sorted by name, then list items, then map values.
func Visit(s *apiextensionsv1.JSONSchemaProps, path string, f func(path string, s *apiextensionsv1.JSONSchemaProps, parent *apiextensionsv1.JSONSchemaProps, name string)) {
	visit(s, path, nil, "", f)
}

func visit(s *apiextensionsv1.JSONSchemaProps, path string, parent *apiextensionsv1.JSONSchemaProps, name string,
	f func(string, *apiextensionsv1.JSONSchemaProps, *apiextensionsv1.JSONSchemaProps, string)) {
	if s == nil {
		return
	}
	f(path, s, parent, name)
	names := make([]string, 0, len(s.Properties))
	for n := range s.Properties {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := s.Properties[n]
		visit(&p, PropertyPath(path, n), s, n, f)
	}
	if s.Items != nil && s.Items.Schema != nil {
		visit(s.Items.Schema, ItemPath(path), s, "", f)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		visit(s.AdditionalProperties.Schema, ValuePath(path), s, "", f)
	}
}

// Rule is an x-kubernetes-validations rule and the path of the field it is
// declared on ("" for the object itself).
type Rule struct {
	Path string
	apiextensionsv1.ValidationRule
}

// Rules lists every x-kubernetes-validations rule at and below s.
func Rules(s *apiextensionsv1.JSONSchemaProps, path string) []Rule {
	var out []Rule
	Visit(s, path, func(p string, s *apiextensionsv1.JSONSchemaProps, _ *apiextensionsv1.JSONSchemaProps, _ string) {
		for _, r := range s.XValidations {
			out = append(out, Rule{Path: p, ValidationRule: r})
		}
	})
	return out
}
