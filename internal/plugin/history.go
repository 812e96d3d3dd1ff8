package plugin

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/cli-runtime/pkg/printers"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

// History is `history PARTNER`: the entitlement changes the operator
// recorded in its status.history, newest first.
type History struct {
	metav1.TypeMeta `json:",inline"`
	Partner         string            `json:"partner"`
	Entries         []v1.HistoryEntry `json:"entries"`
}

func (a *app) historyCmd() *cobra.Command {
	var out output
	cmd := &cobra.Command{
		Use:   "history PARTNER",
		Short: "PARTNER's recorded entitlement changes, newest first",
		Long: `The last 20 entitlement changes of PARTNER as the operator recorded them in
status.history, newest first: granted, failed over, revoked, suspended,
resumed, regranted, with the contracts before and after and why. One
request: the Partner.`,
		Example: `  # What happened to acme-systems
  kubectl entitlements history acme-systems

  # When it last failed over
  kubectl entitlements history acme-systems -o jsonpath='{.entries[?(@.outcome=="FailedOver")].time}'`,
		Args:              args(1, 1, "one PARTNER"),
		ValidArgsFunction: a.completePartners,
		PreRunE:           func(*cobra.Command, []string) error { return out.check() },
		RunE: func(cmd *cobra.Command, argv []string) error {
			_, p, err := a.partner(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			h := &History{TypeMeta: typeMeta("History"), Partner: p.Name, Entries: p.Status.History}
			if h.Entries == nil {
				h.Entries = []v1.HistoryEntry{}
			}
			return out.print(a.out, h)
		},
	}
	out.addFlags(cmd)
	return cmd
}

func (h *History) DeepCopyObject() runtime.Object { return deepCopy(h) }

func (h *History) refs() []ref { return []ref{partnerRef(h.Partner)} }

func (h *History) human(w io.Writer, o printers.PrintOptions) error {
	if len(h.Entries) == 0 {
		fmt.Fprintf(w, "no entitlement changes recorded for partner %s\n", h.Partner)
		return nil
	}
	var rows [][]string
	for _, e := range h.Entries {
		rows = append(rows, []string{stamp(e.Time.Time), string(e.Outcome), orDash(e.PreviousContract), orDash(e.Contract), e.Message})
	}
	return printTable(w, o, []column{{"Time", false}, {"Outcome", false}, {"From", false}, {"To", false}, {"Message", false}}, rows)
}
