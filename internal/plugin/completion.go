package plugin

import (
	"github.com/spf13/cobra"
)

func (a *app) completionCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "A shell completion script, for kubectl-entitlements and for kubectl entitlements",
		Long: `Writes a completion script for the shell: commands, flags, output formats
and, from the cluster, partner names.

kubectl-entitlements completes as soon as the script is loaded. For
"kubectl entitlements ..." (kubectl 1.26 or later), kubectl also needs an
executable named kubectl_complete-entitlements on PATH that hands the
arguments over; see the examples.`,
		Example: `  # bash, for this shell
  source <(kubectl-entitlements completion bash)

  # zsh, for every new shell
  kubectl-entitlements completion zsh > "${fpath[1]}/_kubectl-entitlements"

  # fish and PowerShell
  kubectl-entitlements completion fish > ~/.config/fish/completions/kubectl-entitlements.fish
  kubectl-entitlements completion powershell | Out-String | Invoke-Expression

  # Completion of "kubectl entitlements ..." through kubectl
  printf '#!/bin/sh\nexec kubectl-entitlements __complete "$@"\n' > ~/bin/kubectl_complete-entitlements
  chmod +x ~/bin/kubectl_complete-entitlements`,
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		Args:      cobra.MatchAll(args(1, 1, "one of bash, zsh, fish, powershell"), validShell),
		RunE: func(cmd *cobra.Command, argv []string) error {
			root := cmd.Root()
			switch argv[0] {
			case "bash":
				return root.GenBashCompletionV2(a.out, true)
			case "zsh":
				return root.GenZshCompletion(a.out)
			case "fish":
				return root.GenFishCompletion(a.out, true)
			default:
				return root.GenPowerShellCompletionWithDesc(a.out)
			}
		},
	}
	return cmd
}

func validShell(cmd *cobra.Command, argv []string) error {
	if err := cobra.OnlyValidArgs(cmd, argv); err != nil {
		return usageError{err}
	}
	return nil
}
