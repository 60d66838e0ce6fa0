package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/grappe/grappe/client"
)

// addClientCommands adds the client-side commands: they talk to a master's
// REST API through the client package.
func addClientCommands(root *cobra.Command) {
	root.AddCommand(
		newRunCmd(),
		newSubmitCmd(),
		newStatusCmd(),
		newCancelCmd(),
		newJobsCmd(),
		newWorkersCmd(),
		newLanguagesCmd(),
		newTopCmd(),
		newLoginCmd(),
		newUserCmd(),
		newBenchCmd(),
		newTokenCmd(),
	)
}

// connFlags are the flags saying which master to talk to and how.
type connFlags struct {
	addr, token, ca string
}

// addConnFlags registers --addr, --token and --ca on cmd (and, being
// persistent, on its subcommands).
func addConnFlags(cmd *cobra.Command) *connFlags {
	cf := &connFlags{}
	f := cmd.PersistentFlags()
	f.StringVar(&cf.addr, "addr", "", "master base URL, https://host:port (default $"+client.EnvAddr+", then the login file)")
	f.StringVar(&cf.token, "token", "", "API token (default $"+client.EnvToken+", then the login file; a flag shows in ps, prefer those)")
	f.StringVar(&cf.ca, "ca", "", "PEM file of the CA to trust, e.g. the master's DIR/ca.pem (default $"+client.EnvCA+", then the login file)")
	return cf
}

// config resolves the connection: flags, then environment, then login file.
func (cf *connFlags) config() (client.Config, error) {
	cfg, err := client.FromEnv(client.Config{Addr: cf.addr, Token: cf.token, CAFile: cf.ca, UserAgent: "grappe-cli"})
	if err != nil {
		return cfg, err
	}
	if cfg.Addr == "" {
		return cfg, client.ErrNoAddr
	}
	return cfg, nil
}

// client returns a client for the resolved connection.
func (cf *connFlags) client() (*client.Client, error) {
	cfg, err := cf.config()
	if err != nil {
		return nil, err
	}
	return client.New(cfg)
}

// runE wraps a command body that talks to the master: it resolves the
// connection, opens the client and closes it afterwards.
func (cf *connFlags) runE(body func(cmd *cobra.Command, args []string, c *client.Client) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		c, err := cf.client()
		if err != nil {
			return err
		}
		defer c.Close()
		return body(cmd, args, c)
	}
}

// terminalFD returns the file descriptor behind v when it is a terminal.
func terminalFD(v any) (int, bool) {
	f, ok := v.(*os.File)
	if !ok {
		return -1, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// emitJSON writes v as indented JSON.
func emitJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// tableWriter returns a writer aligning tab-separated columns; call Flush.
func tableWriter(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// ago renders how long ago t was, briefly ("3s ago"); "-" for a zero time.
func sinceString(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	}
	return t.Local().Format("2006-01-02")
}

// dashIfEmpty returns s, or "-" when it is empty, for table cells.
func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// secretReader reads passwords: from the terminal without echo when stdin is
// one, else one line at a time from stdin (for scripts: echo pw | grappe …).
type secretReader struct {
	in     io.Reader
	prompt io.Writer
	lines  *bufio.Reader
}

func newSecretReader(cmd *cobra.Command) *secretReader {
	return &secretReader{in: cmd.InOrStdin(), prompt: cmd.ErrOrStderr()}
}

func (s *secretReader) isTerminal() bool {
	_, ok := terminalFD(s.in)
	return ok
}

// secret reads a password, prompting on a terminal.
func (s *secretReader) secret(prompt string) (string, error) {
	if fd, ok := terminalFD(s.in); ok {
		fmt.Fprint(s.prompt, prompt)
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(s.prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	return s.line()
}

// line reads one line (echoed, on a terminal), without its line end.
func (s *secretReader) line() (string, error) {
	if s.lines == nil {
		s.lines = bufio.NewReader(s.in)
	}
	l, err := s.lines.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && l != "") {
		if errors.Is(err, io.EOF) {
			return "", errors.New("stdin ended before the password")
		}
		return "", err
	}
	return strings.TrimRight(l, "\r\n"), nil
}
