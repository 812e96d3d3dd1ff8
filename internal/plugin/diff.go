package plugin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	v1 "github.com/partnerops/entitlement-operator/api/v1alpha1"
)

type diffFlags struct {
	out              output
	git, at          string
	allowRevocations bool
	prune            bool
}

func (a *app) diffCmd() *cobra.Command {
	var f diffFlags
	cmd := &cobra.Command{
		Use:   "diff [BEFORE] AFTER | --git RANGE [PATHSPEC...]",
		Short: "What a change to the manifests does to every partner, before it is applied",
		Long: `Compares two sets of Partner and DistributorContract manifests and says,
for every partner, what applying the change does: which partners are
revoked, fail over from which contract to which, or are granted, and at
which instant (now, or later when a changed date comes), with the
Subscriptions held by those revoked. The operator's own code decides, at
--at (default now). Other objects in the manifests are ignored.

  diff BEFORE AFTER               two files or directories (read recursively; - is stdin); no cluster
  diff --git RANGE [PATHSPEC...]  two revisions of the git repository in the working directory; no cluster:
                                  A..B (B defaults to HEAD), A...B (from their merge base, as a
                                  pull request shows it), or A alone (against the working tree)
  diff AFTER                      the live cluster against AFTER: each object in AFTER replaces the
                                  live one of its name; with --prune, live ones not in AFTER count
                                  as deleted. Nothing is changed in the cluster.

Exit status: 0 when the change revokes nobody (or --allow-revocations), 3
when it revokes a partner, 2 for a usage error, 1 for any other error.`,
		Example: `  # In a pull request's CI job: what merging does, as a comment
  kubectl entitlements diff --git origin/main...HEAD contracts/ -o markdown

  # Two checkouts or two rendered overlays
  kubectl entitlements diff ./before ./after

  # The cluster against the manifests Argo CD or Flux would apply (prune as they do)
  kustomize build overlays/prod | kubectl entitlements diff - --prune

  # Later: the same change as if merged on the first of the month
  kubectl entitlements diff --git main..feature --at 2026-11-01T00:00:00Z`,
		PreRunE: func(_ *cobra.Command, argv []string) error {
			switch {
			case f.git == "" && (len(argv) < 1 || len(argv) > 2):
				return usageError{errors.New("want BEFORE AFTER, AFTER (against the cluster), or --git RANGE")}
			case f.prune && (f.git != "" || len(argv) != 1):
				return usageError{errors.New("--prune applies to the cluster against AFTER only")}
			}
			if f.at != "" {
				if _, err := parseTime("--at", f.at); err != nil {
					return err
				}
			}
			return f.out.check("markdown")
		},
		RunE: func(cmd *cobra.Command, argv []string) error { return a.diff(cmd.Context(), cmd.InOrStdin(), f, argv) },
	}
	cmd.Flags().StringVar(&f.git, "git", "", "Compare two revisions of the repository in the working directory: A..B, A...B, or A (against the working tree).")
	cmd.Flags().StringVar(&f.at, "at", "", "When the change is applied (RFC 3339); default now.")
	cmd.Flags().BoolVar(&f.allowRevocations, "allow-revocations", false, "Exit 0 even when the change revokes partners.")
	cmd.Flags().BoolVar(&f.prune, "prune", false, "Against the cluster: Partners and DistributorContracts not in AFTER count as deleted, as a GitOps sync with pruning would delete them.")
	f.out.addFlags(cmd, "markdown")
	return cmd
}

func (a *app) diff(ctx context.Context, stdin io.Reader, f diffFlags, argv []string) error {
	at := a.now()
	if f.at != "" {
		at, _ = parseTime("--at", f.at)
	}
	before, after, bname, aname, err := a.sets(ctx, stdin, f, argv)
	if err != nil {
		return err
	}
	d := computeDiff(before, after, at)
	d.Before, d.After = bname, aname
	if err := f.out.print(a.out, d); err != nil {
		return err
	}
	if d.Summary.Revoke > 0 && !f.allowRevocations {
		return revocationsError{d.Summary.Revoke}
	}
	return nil
}

// sets reads the two sets of manifests the arguments name.
func (a *app) sets(ctx context.Context, stdin io.Reader, f diffFlags, argv []string) (before, after world, bname, aname string, err error) {
	switch {
	case f.git != "":
		return a.gitSets(ctx, f.git, argv)
	case len(argv) == 2:
		if before, err = readPaths(stdin, argv[0]); err == nil {
			after, err = readPaths(stdin, argv[1])
		}
		return before, after, argv[0], argv[1], err
	}
	if before, err = a.world(ctx); err != nil {
		return
	}
	m, err := readPaths(stdin, argv[0])
	if err != nil {
		return
	}
	return before, overlay(before, m, f.prune), "the cluster", argv[0], nil
}

func (a *app) gitSets(ctx context.Context, rng string, pathspecs []string) (before, after world, bname, aname string, err error) {
	dir := a.o.Dir
	from, to, ok := strings.Cut(rng, "...")
	if ok {
		if to == "" {
			to = "HEAD"
		}
		var base []byte
		if base, err = git(ctx, dir, nil, "merge-base", orHead(from), to); err != nil {
			return
		}
		bname = fmt.Sprintf("%s (merge base of %s and %s)", short(base), orHead(from), to)
		from = strings.TrimSpace(string(base))
	} else if from, to, ok = strings.Cut(rng, ".."); ok {
		from, to = orHead(from), orHead(to)
	}
	if bname == "" {
		bname = from
	}
	if before, err = readGit(ctx, dir, from, pathspecs); err != nil {
		return
	}
	if !ok {
		// One revision: against the working tree.
		paths := []string{"."}
		if len(pathspecs) > 0 {
			paths = append([]string(nil), pathspecs...)
		}
		for i := range paths {
			if dir != "" && !filepath.IsAbs(paths[i]) {
				paths[i] = filepath.Join(dir, paths[i])
			}
		}
		after, err = readPaths(nil, paths...)
		return before, after, bname, "the working tree", err
	}
	after, err = readGit(ctx, dir, to, pathspecs)
	return before, after, bname, to, err
}

func orHead(rev string) string {
	if rev == "" {
		return "HEAD"
	}
	return rev
}

func short(sha []byte) string {
	s := strings.TrimSpace(string(sha))
	if len(s) > 12 {
		s = s[:12]
	}
	return s
}

// overlay is the cluster after applying m: each object of m replaces the
// live one of its name (whose status it keeps: what the operator counted);
// with prune, live objects not in m are gone.
func overlay(live, m world, prune bool) world {
	cs := make([]v1.DistributorContract, 0, len(live.contracts)+len(m.contracts))
	for n, c := range live.contracts {
		if m.contracts[n] == nil && !prune {
			cs = append(cs, *c)
		}
	}
	for _, c := range m.contracts {
		cs = append(cs, *c)
	}
	lp := byName(live.partners)
	ps := make([]v1.Partner, 0, len(live.partners)+len(m.partners))
	mp := byName(m.partners)
	for _, p := range live.partners {
		if mp[p.Name] == nil && !prune {
			ps = append(ps, p)
		}
	}
	for _, p := range m.partners {
		if l := lp[p.Name]; l != nil {
			p.Status = l.Status
		}
		ps = append(ps, p)
	}
	return newWorld(cs, ps)
}
