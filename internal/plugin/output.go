package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/printers"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// ReportVersion is the apiVersion of what the commands print with -o json
// and -o yaml. Fields are only added within a version; docs/operations.md
// documents the shapes.
var ReportVersion = schema.GroupVersion{Group: "plugin." + v1.GroupVersion.Group, Version: "v1alpha1"}

// report is a command's answer: an object for json, yaml, jsonpath and
// go-template, tables for table and wide, and the objects it is about for
// name.
type report interface {
	runtime.Object
	human(w io.Writer, o printers.PrintOptions) error
	refs() []ref
}

// ref is a Partner or DistributorContract, for -o name.
type ref struct{ kind, name string }

func partnerRef(name string) ref  { return ref{"Partner", name} }
func contractRef(name string) ref { return ref{"DistributorContract", name} }

// output is a command's --output and --no-headers.
type output struct {
	format    string
	noHeaders bool
}

var baseFormats = []string{"table", "wide", "json", "yaml", "name", "jsonpath=", "go-template="}

func (o *output) addFlags(cmd *cobra.Command, extra ...string) {
	formats := append(append([]string{}, baseFormats...), extra...)
	help := strings.NewReplacer("=", "=TEMPLATE", "table", "table (default)").Replace(strings.Join(formats, ", "))
	cmd.Flags().StringVarP(&o.format, "output", "o", "", "Output format: "+help+".")
	cmd.Flags().BoolVar(&o.noHeaders, "no-headers", false, "Print tables without their header row.")
	_ = cmd.RegisterFlagCompletionFunc("output", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return formats, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
	})
}

func (o *output) human() bool { return o.format == "" || o.format == "table" || o.format == "wide" }

// errNoPrinter: the format is none printerFor knows.
var errNoPrinter = errors.New("no printer")

// printerFor is the cli-runtime printer for a machine format, chosen as
// kubectl's PrintFlags choose it (which live in genericclioptions, beside
// what makes a binary twice the size): json, yaml and kyaml; jsonpath=,
// jsonpath-file=, jsonpath-as-json=; go-template=, go-template-file=,
// template=, templatefile=; missing keys in a template print nothing.
func printerFor(format string) (printers.ResourcePrinter, error) {
	switch strings.ToLower(format) {
	case "json":
		return &printers.JSONPrinter{}, nil
	case "yaml":
		return &printers.YAMLPrinter{}, nil
	case "kyaml":
		return &printers.KYAMLPrinter{}, nil
	}
	kind, tmpl, ok := strings.Cut(format, "=")
	if !ok {
		return nil, errNoPrinter
	}
	switch kind {
	case "jsonpath", "jsonpath-as-json", "jsonpath-file", "go-template", "template", "go-template-file", "templatefile":
	default:
		return nil, errNoPrinter
	}
	if tmpl == "" {
		return nil, errors.New("template format specified but no template given")
	}
	if strings.HasSuffix(kind, "file") {
		b, err := os.ReadFile(tmpl)
		if err != nil {
			return nil, fmt.Errorf("error reading --template %s, %v", tmpl, err)
		}
		tmpl = string(b)
	}
	if strings.HasPrefix(kind, "jsonpath") {
		p, err := printers.NewJSONPathPrinter(tmpl)
		if err != nil {
			return nil, fmt.Errorf("error parsing jsonpath %s, %v", tmpl, err)
		}
		p.AllowMissingKeys(true)
		p.EnableJSONOutput(kind == "jsonpath-as-json")
		return p, nil
	}
	p, err := printers.NewGoTemplatePrinter([]byte(tmpl))
	if err != nil {
		return nil, fmt.Errorf("error parsing template %s, %v", tmpl, err)
	}
	p.AllowMissingKeys(true)
	return p, nil
}

// check refuses an unknown format, or a template that does not parse,
// before any request is made.
func (o *output) check(extra ...string) error {
	if o.human() || o.format == "name" {
		return nil
	}
	for _, e := range extra {
		if o.format == e {
			return nil
		}
	}
	switch _, err := printerFor(o.format); {
	case errors.Is(err, errNoPrinter):
		return usageError{fmt.Errorf("--output %q: want one of %s", o.format, strings.Join(append(append([]string{}, baseFormats...), extra...), ", "))}
	case err != nil:
		return usageError{fmt.Errorf("--output: %w", err)}
	}
	return nil
}

// print writes r in the format asked for.
func (o *output) print(w io.Writer, r report) error {
	switch {
	case o.human():
		return r.human(w, printers.PrintOptions{Wide: o.format == "wide", NoHeaders: o.noHeaders})
	case o.format == "name":
		p := &printers.NamePrinter{}
		for _, ref := range r.refs() {
			obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: ref.name}}
			obj.SetGroupVersionKind(v1.GroupVersion.WithKind(ref.kind))
			if err := p.PrintObj(obj, w); err != nil {
				return err
			}
		}
		return nil
	}
	if md, ok := r.(markdowner); ok && o.format == "markdown" {
		return md.markdown(w)
	}
	p, err := printerFor(o.format)
	if err != nil {
		return err
	}
	return p.PrintObj(r, w)
}

type markdowner interface{ markdown(io.Writer) error }

// column is a table column; wide ones are printed by -o wide only.
type column struct {
	name string
	wide bool
}

// printTable prints rows under cols as kubectl prints tables.
func printTable(w io.Writer, o printers.PrintOptions, cols []column, rows [][]string) error {
	t := &metav1.Table{}
	for _, c := range cols {
		d := metav1.TableColumnDefinition{Name: c.name, Type: "string"}
		if c.wide {
			d.Priority = 1
		}
		t.ColumnDefinitions = append(t.ColumnDefinitions, d)
	}
	for _, r := range rows {
		cells := make([]any, len(r))
		for i, c := range r {
			cells[i] = c
		}
		t.Rows = append(t.Rows, metav1.TableRow{Cells: cells})
	}
	return printers.NewTablePrinter(o).PrintObj(t, w)
}

// typeMeta is a report's apiVersion and kind.
func typeMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: ReportVersion.String(), Kind: kind}
}

// deepCopy copies a report through JSON: reports are printed, never
// mutated, and copied only by printers that strip fields.
func deepCopy[T any](in *T) *T {
	b, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		panic(err)
	}
	return out
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	m := metav1.NewTime(t.UTC())
	return &m
}

func stampPtr(t *metav1.Time) string {
	if t == nil {
		return "-"
	}
	return stamp(t.Time)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// nextText is a NextChange as a table cell.
func nextText(n *v1.NextChange) string {
	if n == nil {
		return "-"
	}
	if n.Contract == "" {
		return fmt.Sprintf("%s at %s", n.Outcome, stamp(n.At.Time))
	}
	return fmt.Sprintf("%s %s at %s", n.Outcome, n.Contract, stamp(n.At.Time))
}
