package top

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/x/ansi"
	"github.com/muesli/termenv"

	"github.com/grappe/grappe/api"
)

// styles are the screen's looks for one renderer.
type styles struct {
	title, header, dim, good, warn, bad, loud, banner lipgloss.Style
}

func newStyles(r *lipgloss.Renderer) styles {
	if r == nil {
		// The Ascii profile renders every style as its bare text.
		r = lipgloss.NewRenderer(io.Discard)
		r.SetColorProfile(termenv.Ascii)
	}
	return styles{
		title:  r.NewStyle().Bold(true),
		header: r.NewStyle().Bold(true).Underline(true),
		dim:    r.NewStyle().Faint(true),
		good:   r.NewStyle().Foreground(lipgloss.Color("2")),
		warn:   r.NewStyle().Foreground(lipgloss.Color("3")),
		bad:    r.NewStyle().Foreground(lipgloss.Color("1")),
		loud:   r.NewStyle().Bold(true).Foreground(lipgloss.Color("15")).Background(lipgloss.Color("1")),
		banner: r.NewStyle().Bold(true).Foreground(lipgloss.Color("15")).Background(lipgloss.Color("1")),
	}
}

// Help lists the keys, as the footer shows them.
const Help = "sort: n name  c cpu  m memory  s slots  j jobs done (again: reverse)   q quit"

// View renders the screen.
func (m Model) View() string {
	if m.quitting {
		return ""
	}
	lines := m.render(true)
	if m.width > 0 {
		for i, l := range lines {
			lines[i] = ansi.Truncate(l, m.width, "…")
		}
	}
	return strings.Join(lines, "\n")
}

// Text renders the screen once, without the keys' help: the one-shot
// output of grappe top when stdout is not a terminal.
func (m Model) Text() string { return strings.Join(m.render(false), "\n") + "\n" }

func (m Model) render(interactive bool) []string {
	st := m.st
	head := []string{m.titleLine()}
	if m.err != nil {
		// The banner wraps, where other lines are cut at the window's
		// edge: what failed and that top retries must stay readable.
		text := m.problemLine(interactive)
		if m.width > 2 && interactive {
			text = ansi.Wrap(text, m.width-2, "")
		}
		for _, l := range strings.Split(text, "\n") {
			head = append(head, st.banner.Render(" "+l+" "))
		}
	}
	var footer []string
	if interactive {
		footer = []string{st.dim.Render(Help)}
	}
	if m.snap == nil {
		msg := "connecting to " + m.opts.Addr + "…"
		if m.err != nil {
			msg = "no data yet"
		}
		return append(append(head, "", st.dim.Render(msg), ""), footer...)
	}
	head = append(head, m.summary()...)
	head = append(head, "")
	workers := m.workersTable()
	clients := m.clientsTable()

	// On a short window the workers keep their rows first; clients get
	// what remains, and either table says how many rows it left out.
	if m.height > 0 && interactive {
		room := m.height - len(head) - len(footer) - 2 // blanks around the clients
		wRoom := min(len(workers), max(room-min(len(clients), 4), 3))
		workers = clip(workers, wRoom, st)
		clients = clip(clients, max(room-len(workers), 0), st)
	}
	out := append(head, workers...)
	if len(clients) > 0 {
		out = append(out, "")
		out = append(out, clients...)
	}
	if len(footer) > 0 {
		out = append(out, "")
		out = append(out, footer...)
	}
	return out
}

// clip keeps n lines of a table (its title, header and rows), the last
// saying how many rows were left out. Without room for one row it keeps
// the title alone, which has the count.
func clip(lines []string, n int, st styles) []string {
	if len(lines) <= n {
		return lines
	}
	if n < 3 {
		return lines[:min(n, 1)]
	}
	return append(lines[:n-1:n-1], st.dim.Render(fmt.Sprintf("… %d more", len(lines)-n+1)))
}

func (m Model) titleLine() string {
	t := m.st.title.Render("grappe top") + "  " + m.opts.Addr
	if m.snap != nil {
		when := "updated " + m.snap.Time.Local().Format(time.TimeOnly)
		if m.err != nil {
			when = m.st.warn.Render(when + " (stale)")
		} else {
			when = m.st.dim.Render(when)
		}
		t += "  " + when
	}
	return t
}

// problemLine explains the last failure and, live, that top keeps trying.
func (m Model) problemLine(interactive bool) string {
	s := Explain(m.err, m.opts.Addr)
	if interactive {
		s += fmt.Sprintf(" — since %s (%s), retrying every %s",
			m.failingSince.Local().Format(time.TimeOnly), age(m.lastTry.Sub(m.failingSince)), m.opts.Interval)
	}
	return s
}

// summary is the header: workers, slots, queue, jobs by status, throughput.
func (m Model) summary() []string {
	st, c := m.st, m.snap.Cluster
	label := func(s string) string { return st.title.Render(fmt.Sprintf("%-8s", s)) }
	workers := fmt.Sprintf("%s %s  %s  %s  %s", label("workers"),
		st.good.Render(fmt.Sprintf("%d up", c.Workers[api.WorkerUp])),
		colorIf(c.Workers[api.WorkerDraining] > 0, st.warn, fmt.Sprintf("%d draining", c.Workers[api.WorkerDraining])),
		colorIf(c.Workers[api.WorkerUnhealthy] > 0, st.bad, fmt.Sprintf("%d unhealthy", c.Workers[api.WorkerUnhealthy])),
		colorIf(c.Workers[api.WorkerLost] > 0, st.bad, fmt.Sprintf("%d lost", c.Workers[api.WorkerLost])))
	workers += fmt.Sprintf("    %s %d/%d used    %s %d", st.title.Render("slots"), c.SlotsInUse, c.Slots,
		st.title.Render("queue"), c.QueueDepth)
	jobs := label("jobs")
	for _, s := range []string{api.StatusQueued, api.StatusRunning, api.StatusDone, api.StatusFailed, api.StatusCancelled} {
		jobs += fmt.Sprintf(" %d %s ", c.Jobs[s], s)
	}
	lines := []string{workers, strings.TrimRight(jobs, " "), label("rate") + " " + m.rate()}

	var unsandboxed []string
	for _, w := range m.snap.Workers {
		if w.Sandbox == "none" && w.Status != api.WorkerLost {
			unsandboxed = append(unsandboxed, w.Name)
		}
	}
	if len(unsandboxed) > 0 {
		lines = append(lines, st.loud.Render(fmt.Sprintf(" ! %d worker(s) run jobs WITHOUT A SANDBOX: %s ",
			len(unsandboxed), strings.Join(unsandboxed, ", "))))
	}
	// An unhealthy worker's machinery failed: say why, for the operator.
	for _, w := range m.snap.Workers {
		if w.Status == api.WorkerUnhealthy {
			lines = append(lines, st.bad.Render(fmt.Sprintf(" ! %s is unhealthy (%d infrastructure failures): %s",
				w.Name, w.InfraFailures, dash(w.Health))))
		}
	}
	return lines
}

// rate is the throughput of the master's last complete stats interval.
func (m Model) rate() string {
	s := m.snap.Stats
	if len(s.Points) == 0 || s.IntervalSeconds <= 0 {
		return m.st.dim.Render("no interval complete yet")
	}
	p := s.Points[len(s.Points)-1]
	secs := float64(s.IntervalSeconds)
	return fmt.Sprintf("%.2f done/s  %.2f submitted/s  queue wait %s  %s",
		float64(p.Completed)/secs, float64(p.Submitted)/secs, waitString(p.QueueWaitMs),
		m.st.dim.Render(fmt.Sprintf("(last %ds)", s.IntervalSeconds)))
}

// waitString renders a mean queue wait; an idle cluster places jobs in
// well under a millisecond, which "0s" would hide. The master reports 0
// when nothing started in the interval.
func waitString(ms float64) string {
	switch {
	case ms <= 0:
		return "-"
	case ms < 10:
		return fmt.Sprintf("%.2fms", ms)
	case ms < 1000:
		return fmt.Sprintf("%.0fms", ms)
	}
	return (time.Duration(ms * float64(time.Millisecond))).Round(100 * time.Millisecond).String()
}

func colorIf(cond bool, s lipgloss.Style, text string) string {
	if cond {
		return s.Render(text)
	}
	return text
}

// cell is one table cell: its text, aligned on the plain text, then styled.
type cell struct {
	text  string
	style *lipgloss.Style
}

type column struct {
	title string
	right bool // numbers
}

// table lays out rows under a header, aligning on the cells' plain text so
// that styles never shift a column.
func (m Model) table(cols []column, rows [][]cell) []string {
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = ansi.StringWidth(c.title)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], ansi.StringWidth(c.text))
		}
	}
	pad := func(s string, i int) string {
		gap := strings.Repeat(" ", widths[i]-ansi.StringWidth(s))
		if cols[i].right {
			return gap + s
		}
		return s + gap
	}
	var hdr []string
	for i, c := range cols {
		hdr = append(hdr, m.st.header.Render(pad(c.title, i)))
	}
	out := []string{strings.Join(hdr, "  ")}
	for _, r := range rows {
		parts := make([]string, len(r))
		for i, c := range r {
			parts[i] = pad(c.text, i)
			if c.style != nil {
				parts[i] = c.style.Render(parts[i])
			}
		}
		out = append(out, strings.TrimRight(strings.Join(parts, "  "), " "))
	}
	return out
}

func (m Model) workersTable() []string {
	st := m.st
	arrow := "↑"
	if m.desc {
		arrow = "↓"
	}
	title := func(s string, by SortKey) string {
		if m.sortBy == by {
			return s + arrow
		}
		return s
	}
	cols := []column{
		{title: title("NAME", ByName)}, {title: "STATUS"}, {title: "SANDBOX"},
		{title: title("SLOTS", BySlots), right: true}, {title: title("CPU%", ByCPU), right: true},
		{title: title("MEM%", ByMemory), right: true}, {title: title("DONE", ByJobs), right: true},
		{title: "INFRA", right: true}, {title: "BEAT", right: true}, {title: "LANGUAGES"},
	}
	var rows [][]cell
	for _, w := range m.workers() {
		status := cell{text: w.Status}
		switch w.Status {
		case api.WorkerUp:
			status.style = &st.good
		case api.WorkerDraining:
			status.style = &st.warn
		case api.WorkerLost, api.WorkerUnhealthy:
			status.style = &st.bad
		}
		// Attempts given back because the worker's machinery failed.
		infra := cell{text: fmt.Sprint(w.InfraFailures)}
		if w.InfraFailures > 0 {
			infra.style = &st.warn
		}
		sandbox := cell{text: dash(w.Sandbox)}
		if w.Sandbox == "none" {
			sandbox = cell{text: "none (INSECURE)", style: &st.loud}
		}
		slots := cell{text: fmt.Sprintf("%d/%d", w.Running, w.Slots)}
		if w.Slots > 0 && w.Running >= w.Slots {
			slots.style = &st.warn
		}
		beat := cell{text: age(m.snap.Time.Sub(w.LastHeartbeat))}
		if w.LastHeartbeat.IsZero() {
			beat.text = "-"
		}
		if w.Status == api.WorkerLost {
			beat.style = &st.bad
		}
		rows = append(rows, []cell{
			{text: w.Name}, status, sandbox, slots,
			load(w.CPUPercent, st), load(w.MemoryPercent, st),
			{text: fmt.Sprint(w.JobsDone)}, infra, beat, {text: languages(w.Languages, 40)},
		})
	}
	lines := []string{st.title.Render(fmt.Sprintf("WORKERS (%d)", len(rows)))}
	if len(rows) == 0 {
		return append(lines, st.dim.Render("no worker has joined: start one with grappe worker --master … --join-token …"))
	}
	return append(lines, m.table(cols, rows)...)
}

func (m Model) clientsTable() []string {
	st := m.st
	cols := []column{{title: "USER"}, {title: "ADDRESS"}, {title: "SINCE", right: true},
		{title: "JOBS", right: true}, {title: "RUNNING", right: true}, {title: "QUEUED", right: true}}
	var rows [][]cell
	for _, c := range m.snap.Clients {
		rows = append(rows, []cell{{text: c.User}, {text: c.Address},
			{text: age(m.snap.Time.Sub(c.Since))}, {text: fmt.Sprint(c.JobsTotal)},
			{text: fmt.Sprint(c.JobsRunning)}, {text: fmt.Sprint(c.JobsQueued)}})
	}
	lines := []string{st.title.Render(fmt.Sprintf("CLIENTS (%d, seen in the last minutes)", len(rows)))}
	if len(rows) == 0 {
		return append(lines, st.dim.Render("none"))
	}
	return append(lines, m.table(cols, rows)...)
}

// load renders a percentage, yellow past 70 and red past 90: the levels
// at which the scheduler's thresholds usually start to bite.
func load(p float64, st styles) cell {
	c := cell{text: fmt.Sprintf("%.1f", p)}
	switch {
	case p >= 90:
		c.style = &st.bad
	case p >= 70:
		c.style = &st.warn
	}
	return c
}

// languages lists language names, cut to about n columns.
func languages(ls []api.WorkerLanguage, n int) string {
	var b strings.Builder
	for i, l := range ls {
		if i > 0 {
			if b.Len()+1+len(l.Name) > n {
				fmt.Fprintf(&b, " +%d", len(ls)-i)
				break
			}
			b.WriteByte(',')
		}
		b.WriteString(l.Name)
	}
	return dash(b.String())
}

// age renders a duration briefly: 0.4s, 12s, 5m, 3h, 2d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 10*time.Second:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
