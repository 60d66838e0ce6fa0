package cli

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
)

// newTokenCmd manages API tokens and the cluster's join token.
func newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Create, list and revoke your API tokens; rotate the join token (admin)",
	}
	cf := addConnFlags(cmd)
	var asJSON bool
	var expires string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API token (printed once: the master keeps only its hash)",
		Long: `Create an API token. It stays valid until revoked, or until --expires
passes (a duration such as 90d or 12h). Tokens that grappe login and the web
UI make are different: they expire by themselves (30 days by default) and a
password change revokes them.`,
		Args: cobra.ExactArgs(1),
		RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
			var at time.Time
			if expires != "" {
				d, err := parseLongDuration(expires)
				if err != nil || d <= 0 {
					return fmt.Errorf("--expires %q: want a positive duration such as 90d or 12h", expires)
				}
				at = time.Now().Add(d)
			}
			t, err := c.CreateTokenExpiring(cmd.Context(), args[0], at)
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
	create.Flags().StringVar(&expires, "expires", "", "make the token expire after this long (e.g. 90d, 12h); default never")
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
			fmt.Fprintln(tw, "ID\tNAME\tKIND\tCREATED\tEXPIRES")
			for _, t := range ts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Kind, t.CreatedAt.Local().Format(time.DateTime), tokenExpiry(t, time.Now()))
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

// tokenExpiry is the EXPIRES column of grappe token list.
func tokenExpiry(t api.APIToken, now time.Time) string {
	switch {
	case t.ExpiresAt == nil:
		return "never"
	case !now.Before(*t.ExpiresAt):
		return "expired " + t.ExpiresAt.Local().Format(time.DateTime)
	}
	return t.ExpiresAt.Local().Format(time.DateTime)
}

// parseLongDuration is time.ParseDuration that also takes whole days
// ("30d"), the unit token lifetimes are thought in.
func parseLongDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}
