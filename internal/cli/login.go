package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
)

func newLoginCmd() *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a master and remember it for the other commands",
		Long: `Login asks the master for an API token with your user name and password
(read from the terminal without echo, or from stdin when it is not a
terminal) and writes the master's address, the token and the CA file to
$XDG_CONFIG_HOME/grappe/config.json (~/.config/grappe/config.json), mode 0600.`,
		Args: cobra.NoArgs,
	}
	cf := addConnFlags(cmd)
	cmd.Flags().StringVarP(&user, "user", "u", "", "user name (asked for on a terminal when absent)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		cfg, err := cf.config()
		if err != nil {
			return err
		}
		cfg.Token = "" // a login needs none, and must not leak an old one
		c, err := client.New(cfg)
		if err != nil {
			return err
		}
		defer c.Close()
		sr := newSecretReader(cmd)
		if user == "" {
			if !sr.isTerminal() {
				return errors.New("--user is required when stdin is not a terminal")
			}
			fmt.Fprint(cmd.ErrOrStderr(), "User: ")
			if user, err = sr.line(); err != nil {
				return err
			}
		}
		password, err := sr.secret("Password for " + user + ": ")
		if err != nil {
			return err
		}
		token, err := c.Login(cmd.Context(), user, password)
		if err != nil {
			return err
		}
		fc := client.FileConfig{Addr: c.Addr(), Token: token}
		if cfg.CAFile != "" {
			// Absolute, so that the file works from any directory.
			if fc.CA, err = filepath.Abs(cfg.CAFile); err != nil {
				return err
			}
		}
		path, err := client.DefaultConfigPath()
		if err != nil {
			return err
		}
		if err := client.WriteConfigFile(path, fc); err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "Logged in to %s as %s; saved in %s\n", fc.Addr, user, path)
		return nil
	}
	return cmd
}

func newUserCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Administer users: add, list, remove, passwd",
	}
	cf := addConnFlags(cmd)
	cmd.AddCommand(newUserAddCmd(cf), newUserListCmd(cf), newUserRemoveCmd(cf), newUserPasswdCmd(cf))
	return cmd
}

// newPassword reads a new password: twice on a terminal (a typo there would
// lock the user out), once from stdin otherwise.
func newPassword(sr *secretReader, user string) (string, error) {
	pw, err := sr.secret("New password for " + user + ": ")
	if err != nil {
		return "", err
	}
	if pw == "" {
		return "", errors.New("empty password")
	}
	if sr.isTerminal() {
		again, err := sr.secret("Again: ")
		if err != nil {
			return "", err
		}
		if again != pw {
			return "", errors.New("the passwords differ")
		}
	}
	return pw, nil
}

func newUserAddCmd(cf *connFlags) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user (admin); the password is read from the terminal or stdin",
		Args:  cobra.ExactArgs(1),
	}
	cmd.Flags().StringVar(&role, "role", api.RoleUser, "role: user or admin")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if role != api.RoleUser && role != api.RoleAdmin {
			return fmt.Errorf("--role must be %s or %s", api.RoleUser, api.RoleAdmin)
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		defer c.Close()
		pw, err := newPassword(newSecretReader(cmd), args[0])
		if err != nil {
			return err
		}
		if err := c.AddUser(cmd.Context(), args[0], pw, role); err != nil {
			return err
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "user %s added (%s)\n", args[0], role)
		return err
	}
	return cmd
}

func newUserListCmd(cf *connFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the users (admin)",
		Args:  cobra.NoArgs,
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the users as JSON")
	cmd.RunE = cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
		users, err := c.Users(cmd.Context())
		if err != nil {
			return err
		}
		if asJSON {
			return emitJSON(cmd.OutOrStdout(), api.UserList{Users: users})
		}
		now := time.Now()
		tw := tableWriter(cmd.OutOrStdout())
		fmt.Fprintln(tw, "NAME\tROLE\tCREATED")
		for _, u := range users {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", u.Username, u.Role, sinceString(now, u.CreatedAt))
		}
		return tw.Flush()
	})
	return cmd
}

func newUserRemoveCmd(cf *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:     "remove NAME",
		Aliases: []string{"rm"},
		Short:   "Remove a user and their tokens (admin)",
		Args:    cobra.ExactArgs(1),
		RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
			if err := c.RemoveUser(cmd.Context(), args[0]); err != nil {
				return err
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "user %s removed\n", args[0])
			return err
		}),
	}
}

func newUserPasswdCmd(cf *connFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password (yours, or anyone's for an admin)",
		Args:  cobra.ExactArgs(1),
		RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
			pw, err := newPassword(newSecretReader(cmd), args[0])
			if err != nil {
				return err
			}
			if err := c.SetPassword(cmd.Context(), args[0], pw); err != nil {
				return err
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "password of %s changed; their login sessions (grappe login, the web UI) were revoked, their API tokens still work\n", args[0])
			return err
		}),
	}
}
