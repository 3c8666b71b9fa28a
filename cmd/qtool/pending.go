package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// pending describes a command of DESIGN.md's contract whose implementation
// has not landed yet. It is registered with its real usage and help so that
// scripts can discover it, and it says plainly that it is not available.
type pending struct {
	use, short, long, issue string
}

var pendingCommands = []pending{}

func addPendingCommands(root *cobra.Command) {
	for _, p := range pendingCommands {
		p := p
		root.AddCommand(&cobra.Command{
			Use:   p.use,
			Short: p.short + " (not available yet)",
			Long:  p.long + "\n\nNot available in this build of qtool: it is tracked as " + p.issue + ".",
			// Accept any arguments and flags so that the message below, not a
			// flag-parsing error, is what the user sees.
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, args []string) error {
				for _, a := range args {
					if a == "-h" || a == "--help" {
						return cmd.Help()
					}
				}
				return badInput(fmt.Errorf("%s is not available in this build of qtool yet (%s)", cmd.Name(), p.issue))
			},
		})
	}
}
