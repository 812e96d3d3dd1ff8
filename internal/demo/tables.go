package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/printers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// tableAccept asks the API server to print, as `kubectl get` does.
const tableAccept = "application/json;as=Table;v=v1;g=meta.k8s.io"

// Collections the demo prints.
const (
	TableContracts     = "/apis/entitlements.partnerops.io/v1alpha1/distributorcontracts"
	TablePartners      = "/apis/entitlements.partnerops.io/v1alpha1/partners"
	TableSubscriptions = "/apis/entitlements.partnerops.io/v1alpha1/subscriptions"
)

// Table asks the API server for a collection as a table (server-side
// printing: the CRD's printer columns) and renders it as `kubectl get`
// does, with kubectl's own table printer: upper-case headers, columns
// three spaces apart, priority>0 columns only when wide.
func Table(ctx context.Context, cfg *rest.Config, path string, withNamespace, wide bool) (string, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	raw, err := cs.CoreV1().RESTClient().Get().AbsPath(path).SetHeader("Accept", tableAccept).DoRaw(ctx)
	if err != nil {
		return "", fmt.Errorf("GET %s as a table: %w", path, err)
	}
	table := &metav1.Table{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // integers print as kubectl prints them
	if err := dec.Decode(table); err != nil {
		return "", fmt.Errorf("decoding the table of %s: %w", path, err)
	}
	if table.Kind != "Table" {
		return "", fmt.Errorf("GET %s: the API server answered a %s, not a Table", path, table.Kind)
	}
	// The printer reads each row's object metadata for the namespace column.
	for i := range table.Rows {
		if raw := table.Rows[i].Object.Raw; len(raw) > 0 {
			m := &metav1.PartialObjectMetadata{}
			if err := json.Unmarshal(raw, m); err == nil {
				table.Rows[i].Object.Object = m
			}
		}
	}
	if len(table.Rows) == 0 {
		return "No resources found\n", nil
	}
	var out bytes.Buffer
	p := printers.NewTablePrinter(printers.PrintOptions{WithNamespace: withNamespace, Wide: wide})
	if err := p.PrintObj(table, &out); err != nil {
		return "", err
	}
	return out.String(), nil
}

// PrintTable writes Table's output on the timeline (atomically).
func PrintTable(ctx context.Context, cfg *rest.Config, tl *Timeline, path string, withNamespace bool) error {
	s, err := Table(ctx, cfg, path, withNamespace, false)
	if err != nil {
		return err
	}
	tl.Printf("%s", s)
	return nil
}
