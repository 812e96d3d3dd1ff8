package plugin

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/cli-runtime/pkg/genericclioptions"
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

func (o *output) printFlags() *genericclioptions.PrintFlags {
	f := genericclioptions.NewPrintFlags("")
	f.OutputFormat = &o.format
	return f
}

// check refuses an unknown format before any request is made.
func (o *output) check(extra ...string) error {
	if o.human() || o.format == "name" {
		return nil
	}
	for _, e := range extra {
		if o.format == e {
			return nil
		}
	}
	if _, err := o.printFlags().ToPrinter(); err != nil {
		return usageError{fmt.Errorf("--output %q: want one of %s", o.format, strings.Join(append(append([]string{}, baseFormats...), extra...), ", "))}
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
	p, err := o.printFlags().ToPrinter()
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
