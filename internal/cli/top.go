package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"github.com/grappe/grappe/internal/top"
)

func newTopCmd() *cobra.Command {
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "top",
		Short: "Watch the cluster live: workers, load, slots, queue, clients (admin)",
		Long: "top shows the cluster as the dashboard does and refreshes it every second.\n" +
			"Keys: " + top.Help + ".\n" +
			"When stdout is not a terminal it prints one snapshot as text and exits.",
		Args: cobra.NoArgs,
	}
	cf := addConnFlags(cmd)
	cmd.Flags().DurationVar(&interval, "interval", top.DefaultInterval, "time between refreshes")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if interval < 100*time.Millisecond {
			return fmt.Errorf("--interval %s is too short (at least 100ms)", interval)
		}
		c, err := cf.client()
		if err != nil {
			return err
		}
		defer c.Close()
		ctx, cancel := context.WithCancel(cmd.Context())
		defer cancel()
		f := &top.Fetcher{Source: c}
		out := cmd.OutOrStdout()

		if _, tty := terminalFD(out); !tty {
			// One snapshot for scripts and logs, and an exit status that
			// says whether it could be read.
			r := f.Fetch(ctx)
			if r.Err != nil {
				return top.Wrap(r.Err, c.Addr())
			}
			m, _ := top.New(top.Options{Addr: c.Addr()}).Update(r)
			_, err := fmt.Fprint(out, m.(top.Model).Text())
			return err
		}

		model := top.New(top.Options{
			Addr: c.Addr(), Interval: interval,
			Fetch:    func() top.Result { return f.Fetch(ctx) },
			Renderer: lipgloss.NewRenderer(out),
		})
		p := tea.NewProgram(model, tea.WithContext(ctx), tea.WithAltScreen(),
			tea.WithInput(cmd.InOrStdin()), tea.WithOutput(out))
		_, err = p.Run()
		// Ctrl-C arrives as a key in raw mode; as a signal (kill -INT, or
		// a non-terminal stdin) it cancels ctx or interrupts the program.
		// Both are how top is meant to end.
		if errors.Is(err, tea.ErrInterrupted) || (errors.Is(err, tea.ErrProgramKilled) && cmd.Context().Err() != nil) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("top: %w", err)
		}
		return nil
	}
	return cmd
}
