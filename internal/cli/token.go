package cli

import (
	"encoding/json"
	"fmt"
	"github.com/grappe/grappe/client"
	"time"

	"github.com/spf13/cobra"
)

// newTokenCmd manages API tokens and the cluster's join token.
func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke your API tokens; rotate the join token (admin)",
	}
	cf := addConnFlags(cmd)
	var asJSON bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API token (printed once: the master keeps only its hash)",
		Args:  cobra.ExactArgs(1),
		RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
			t, err := c.CreateToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(t)
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s (%s) created; it is not shown again\n", t.ID, t.Name)
			return nil
		}),
	}
	create.Flags().BoolVar(&asJSON, "json", false, "print the token as JSON")
	list := &cobra.Command{
		Use:   "list",
		Short: "List your API tokens",
		Args:  cobra.NoArgs,
		RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
			ts, err := c.Tokens(cmd.Context())
			if err != nil {
				return err
			}
			tw := tableWriter(cmd.OutOrStdout())
			fmt.Fprintln(tw, "ID\tNAME\tCREATED")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Local().Format(time.DateTime))
			}
			return tw.Flush()
		}),
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke one of your API tokens",
		Args:  cobra.ExactArgs(1),
		RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
			return c.RevokeToken(cmd.Context(), args[0])
		}),
	}
	rotate := &cobra.Command{
		Use:   "rotate-join",
		Short: "Replace the cluster's join token (admin); joined workers keep working",
		Args:  cobra.NoArgs,
		RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
			tok, err := c.RotateJoinToken(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		}),
	}
	cmd.AddCommand(create, list, revoke, rotate)
	return cmd
}
