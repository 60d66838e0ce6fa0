package cli

import "github.com/spf13/cobra"

// Placeholders until the server commands land.
func newUpCmd() *cobra.Command     { return &cobra.Command{Use: "up"} }
func newMasterCmd() *cobra.Command { return &cobra.Command{Use: "master"} }
func newWorkerCmd() *cobra.Command { return &cobra.Command{Use: "worker"} }
