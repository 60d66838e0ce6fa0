package cli

import (
	"fmt"
	"github.com/grappe/grappe/client"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/grappe/grappe/api"
)

func newStatusCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status ID",
		Short: "Show a job",
		Args:  cobra.ExactArgs(1),
	}
	cf := addConnFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the job as JSON")
	cmd.RunE = cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
		job, err := c.Job(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if asJSON {
			return emitJSON(cmd.OutOrStdout(), job)
		}
		return printJobSummary(cmd.OutOrStdout(), job, time.Now())
	})
	return cmd
}

// printJobSummary prints a job for a human: what it is, where it ran, how
// it ended; the output itself is left to --json and grappe run.
func printJobSummary(w io.Writer, j *api.Job, now time.Time) error {
	tw := tableWriter(w)
	row := func(k, v string) { fmt.Fprintf(tw, "%s:\t%s\n", k, v) }
	row("id", j.ID)
	status := j.Status
	switch {
	case j.Verdict != "":
		status += " (" + j.Verdict + ")"
	case j.Status == api.StatusQueued && j.QueuePosition > 0:
		status += fmt.Sprintf(" (position %d)", j.QueuePosition)
	}
	row("status", status)
	if j.Error != "" {
		row("error", j.Error)
	}
	row("owner", dashIfEmpty(j.Owner))
	row("language", strings.TrimSpace(j.Language+" "+j.Version))
	if j.Worker != "" {
		row("worker", fmt.Sprintf("%s (attempt %d)", j.Worker, j.Attempts))
	}
	row("created", fmt.Sprintf("%s (%s)", j.CreatedAt.Local().Format(time.DateTime), sinceString(now, j.CreatedAt)))
	if j.StartedAt != nil && j.FinishedAt != nil {
		row("took", j.FinishedAt.Sub(*j.StartedAt).Round(time.Millisecond).String())
	}
	if cp := j.Compile; cp != nil {
		cached := ""
		if cp.Cached {
			cached = ", cached"
		}
		row("compile", fmt.Sprintf("exit %d, %d ms%s", cp.ExitCode, cp.WallMs, cached))
	}
	if r := j.Run; r != nil {
		row("run", runSummary(r))
	}
	for i, t := range j.Tests {
		row(fmt.Sprintf("test %d", i+1), t.Verdict+", "+runSummary(&t.Run))
	}
	return tw.Flush()
}

func runSummary(r *api.Run) string {
	end := "exit " + strconv.Itoa(r.ExitCode)
	if r.Signal != "" {
		end = "killed by " + signalName(r.Signal)
	}
	s := fmt.Sprintf("%s, cpu %d ms, wall %d ms, memory %d KB", end, r.CPUMs, r.WallMs, r.MemoryKB)
	if r.OutputTruncated {
		s += ", output truncated"
	}
	return s
}

func newCancelCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cancel ID",
		Short: "Cancel a queued or running job",
		Args:  cobra.ExactArgs(1),
	}
	cf := addConnFlags(cmd)
	cmd.RunE = cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
		job, err := c.Cancel(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		status := "cancel requested"
		if job != nil && job.Status != "" {
			status = job.Status
		}
		_, err = fmt.Fprintf(cmd.OutOrStdout(), "job %s: %s\n", args[0], status)
		return err
	})
	return cmd
}

func newJobsCmd() *cobra.Command {
	var (
		status string
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "jobs",
		Short: "List your jobs (all jobs for an admin), newest first",
		Args:  cobra.NoArgs,
	}
	cf := addConnFlags(cmd)
	cmd.Flags().StringVar(&status, "status", "", "only jobs with this status (queued, running, done, cancelled, failed)")
	cmd.Flags().IntVar(&limit, "limit", 20, "at most this many jobs")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the jobs as JSON")
	cmd.RunE = cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
		jobs, err := c.Jobs(cmd.Context(), status, limit)
		if err != nil {
			return err
		}
		if asJSON {
			return emitJSON(cmd.OutOrStdout(), api.JobList{Jobs: jobs})
		}
		now := time.Now()
		tw := tableWriter(cmd.OutOrStdout())
		fmt.Fprintln(tw, "ID\tSTATUS\tVERDICT\tLANGUAGE\tOWNER\tWORKER\tCREATED\tWALL")
		for _, j := range jobs {
			wall := "-"
			if j.Run != nil {
				wall = fmt.Sprintf("%d ms", j.Run.WallMs)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.ID, j.Status, dashIfEmpty(j.Verdict),
				j.Language, dashIfEmpty(j.Owner), dashIfEmpty(j.Worker), sinceString(now, j.CreatedAt), wall)
		}
		return tw.Flush()
	})
	return cmd
}

func newWorkersCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "workers",
		Short: "List the workers (admin)",
		Args:  cobra.NoArgs,
	}
	cf := addConnFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the workers as JSON")
	cmd.AddCommand(&cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a worker's certificate and disconnect it (admin); rotate the join token too to keep it out",
		Args:  cobra.ExactArgs(1),
		RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
			return c.RevokeWorker(cmd.Context(), args[0])
		}),
	}, &cobra.Command{
		Use:   "identities",
		Short: "List the worker certificates the master issued (admin)",
		Args:  cobra.NoArgs,
		RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
			ids, err := c.WorkerIdentities(cmd.Context())
			if err != nil {
				return err
			}
			tw := tableWriter(cmd.OutOrStdout())
			fmt.Fprintln(tw, "NAME\tSERIAL\tISSUED\tEXPIRES\tREVOKED")
			for _, id := range ids {
				revoked := "-"
				if id.RevokedAt != nil {
					revoked = id.RevokedAt.Local().Format(time.DateTime)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id.Name, id.Serial, id.CreatedAt.Local().Format(time.DateTime), id.ExpiresAt.Local().Format(time.DateOnly), revoked)
			}
			return tw.Flush()
		}),
	})
	for _, action := range []string{"drain", "undrain"} {
		short := "Stop placing new jobs on a worker; its running jobs finish (admin)"
		if action == "undrain" {
			short = "Place jobs on a drained worker again (admin)"
		}
		cmd.AddCommand(&cobra.Command{
			Use:   action + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
				set := c.Drain
				if action == "undrain" {
					set = c.Undrain
				}
				w, err := set(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (%d running)\n", w.Name, w.Status, w.Running)
				return nil
			}),
		})
	}
	cmd.RunE = cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
		workers, err := c.Workers(cmd.Context())
		if err != nil {
			return err
		}
		if asJSON {
			return emitJSON(cmd.OutOrStdout(), api.WorkerList{Workers: workers})
		}
		return printWorkers(cmd.OutOrStdout(), workers, time.Now())
	})
	return cmd
}

func printWorkers(w io.Writer, workers []api.Worker, now time.Time) error {
	tw := tableWriter(w)
	fmt.Fprintln(tw, "NAME\tSTATUS\tSANDBOX\tSLOTS\tCPU\tMEM\tDONE\tINFRA\tLANGUAGES\tHEARTBEAT\tSTARTED BY")
	for _, wk := range workers {
		sandbox := dashIfEmpty(wk.Sandbox)
		if wk.Sandbox == "none" {
			// Programs on this worker run with the worker's own rights:
			// that must not go unnoticed in a listing.
			sandbox = "none (INSECURE)"
		}
		langs := make([]string, 0, len(wk.Languages))
		for _, l := range wk.Languages {
			langs = append(langs, strings.TrimSpace(l.Name+" "+l.Version))
		}
		// Who started it and why: the autoscaler's provisioner and
		// reason, or "-" for a worker started by hand.
		origin := "-"
		if o := wk.StartedBy; o != nil {
			origin = "autoscaler (" + o.Provisioner + "): " + o.Reason
		}
		// INFRA: attempts it gave back because its own machinery failed.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%.0f%%\t%.0f%%\t%d\t%d\t%s\t%s\t%s\n", wk.Name, wk.Status, sandbox,
			wk.Running, wk.Slots, wk.CPUPercent, wk.MemoryPercent, wk.JobsDone, wk.InfraFailures,
			dashIfEmpty(strings.Join(langs, ", ")), sinceString(now, wk.LastHeartbeat), origin)
	}
	return tw.Flush()
}

func newLanguagesCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "languages",
		Short: "List the languages the connected workers can run",
		Args:  cobra.NoArgs,
	}
	cf := addConnFlags(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the languages as JSON")
	cmd.RunE = cf.runE(func(cmd *cobra.Command, args []string, c *client.Client) error {
		langs, err := c.Languages(cmd.Context())
		if err != nil {
			return err
		}
		if asJSON {
			return emitJSON(cmd.OutOrStdout(), api.LanguageList{Languages: langs})
		}
		tw := tableWriter(cmd.OutOrStdout())
		fmt.Fprintln(tw, "NAME\tVERSION\tWORKERS\tOTHER VERSIONS")
		for _, l := range langs {
			var others []string
			for _, v := range l.Versions {
				if v != l.Version {
					others = append(others, v)
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", l.Name, dashIfEmpty(l.Version), l.Workers, dashIfEmpty(strings.Join(others, ", ")))
		}
		return tw.Flush()
	})
	return cmd
}
