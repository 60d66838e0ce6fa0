package cli

import "github.com/spf13/cobra"

// addClientCommands adds the client-side commands (run, submit, …).
func addClientCommands(root *cobra.Command) {}
