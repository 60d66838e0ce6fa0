package cli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
)

// runInteractive runs req as an interactive job: grappe's own stdin goes
// to the program as it comes (its EOF is the program's), the program's
// output is written as it comes, and the finished job is returned. Ctrl-C
// (ctx) leaves, which cancels the job, as grappe run does.
func runInteractive(ctx context.Context, c *client.Client, req *api.JobRequest, stdin io.Reader, stdout, stderr io.Writer) (*api.Job, error) {
	req.Interactive = true
	job, err := c.Submit(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, &exitError{code: exitInterrupted}
		}
		return nil, err
	}
	a, err := c.Attach(ctx, job.ID)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	// The feeder ends with grappe's stdin, or when the attachment does
	// (its writes fail); a Read of a terminal in progress cannot be
	// interrupted, which only matters until grappe exits.
	go feed(ctx, a, stdin)
	for {
		m, err := a.Next(ctx)
		switch {
		case ctx.Err() != nil:
			return nil, &exitError{code: exitInterrupted}
		case err != nil:
			return nil, fmt.Errorf("job %s: the connection to the master ended: %w", job.ID, err)
		}
		switch m.Type {
		case "output":
			w := stdout
			if m.Stream == "stderr" {
				w = stderr
			}
			if err := writeProgramOutput(w, m.Data, m.Encoding); err != nil {
				return nil, err
			}
		case "error":
			fmt.Fprintf(stderr, "grappe: %s\n", m.Message)
		case "exit":
			if m.Job == nil {
				return nil, fmt.Errorf("job %s: %s", job.ID, m.Error)
			}
			return m.Job, nil
		}
	}
}

// feed copies stdin to the attachment, then ends the program's input.
func feed(ctx context.Context, a *client.Attachment, stdin io.Reader) {
	buf := make([]byte, 16<<10)
	for {
		n, err := stdin.Read(buf)
		if n > 0 && a.Write(ctx, buf[:n]) != nil {
			return
		}
		if errors.Is(err, io.EOF) {
			_ = a.CloseStdin(ctx)
			return
		}
		if err != nil {
			return
		}
	}
}

// reportInteractive is reportJob for a job whose output was already
// written as it came: only the compiler's output (not streamed), the
// verdict's line and the exit code are left.
func reportInteractive(job *api.Job, stderr io.Writer) error {
	if job.Status != api.StatusDone || job.Verdict == api.VerdictCompileError || job.Run == nil {
		// Nothing of the run was written: reportJob says it all.
		return reportJob(job, io.Discard, stderr)
	}
	if msg := verdictMessage(job, job.Run); msg != "" {
		fmt.Fprintln(stderr, "grappe: "+msg)
	}
	if code := runExitCode(job, job.Run); code != 0 {
		return &exitError{code: code}
	}
	return nil
}
