package top

import (
	"cmp"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"

	"github.com/grappe/grappe/api"
)

// DefaultInterval is how often the screen refreshes.
const DefaultInterval = time.Second

// SortKey orders the workers table.
type SortKey int

const (
	ByName SortKey = iota
	ByCPU
	ByMemory
	BySlots // slots in use, then free slots
	ByJobs  // jobs done
)

// sortKeys maps a key press to its order, and names the column it sorts.
var sortKeys = map[string]SortKey{"n": ByName, "c": ByCPU, "m": ByMemory, "s": BySlots, "j": ByJobs}

// Options configure a Model.
type Options struct {
	// Addr is the master's URL, shown in the header and in errors.
	Addr string
	// Interval between the end of a fetch and the next; DefaultInterval
	// when zero. Counting from the end, not a fixed tick, means a slow
	// master is never asked twice at once.
	Interval time.Duration
	// Fetch reads one snapshot; it runs outside the model, as a Bubble Tea
	// command. Nil fetches nothing: the model shows what it is given.
	Fetch func() Result
	// Renderer styles the screen for its terminal; nil renders plain text
	// (no colours, no escapes), for pipes and tests.
	Renderer *lipgloss.Renderer
}

// Model is the state of the screen: the last snapshot, the last failure,
// the workers' order and the window's size. It is a value, as Bubble Tea
// wants: Update returns the changed copy.
type Model struct {
	opts Options
	st   styles
	snap *Snapshot
	err  error
	// failingSince is when the current run of failed fetches began; zero
	// while fetches succeed.
	failingSince, lastTry time.Time

	sortBy        SortKey
	desc          bool
	width, height int
	quitting      bool
}

// refreshMsg asks for the next fetch.
type refreshMsg struct{}

// New returns a model that has no data yet.
func New(opts Options) Model {
	if opts.Interval <= 0 {
		opts.Interval = DefaultInterval
	}
	return Model{opts: opts, st: newStyles(opts.Renderer), sortBy: ByName}
}

// Init starts the first fetch at once.
func (m Model) Init() tea.Cmd { return m.fetch() }

// Update applies one message.
func (m Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case Result:
		m = m.apply(msg)
		return m, m.next()
	case refreshMsg:
		return m, m.fetch()
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tea.KeyMsg:
		k := msg.String()
		switch k {
		case "q", "ctrl+c", "esc":
			m.quitting = true
			return m, tea.Quit
		}
		if by, ok := sortKeys[k]; ok {
			m = m.sorted(by)
		}
	}
	return m, nil
}

// apply records a fetch's outcome. A failure keeps the last snapshot on
// screen (marked stale) rather than blanking it: an operator watching a
// master restart still sees where the cluster was.
func (m Model) apply(r Result) Model {
	m.lastTry = r.Time
	if r.Err != nil {
		if m.err == nil {
			m.failingSince = r.Time
		}
		m.err = r.Err
		return m
	}
	m.err, m.failingSince = nil, time.Time{}
	m.snap = r.Snapshot
	return m
}

// sorted switches the workers' order; the same key again reverses it.
// Names read best A to Z, loads most loaded first.
func (m Model) sorted(by SortKey) Model {
	if m.sortBy == by {
		m.desc = !m.desc
	} else {
		m.sortBy, m.desc = by, by != ByName
	}
	return m
}

func (m Model) fetch() tea.Cmd {
	if m.opts.Fetch == nil {
		return nil
	}
	return func() tea.Msg { return m.opts.Fetch() }
}

func (m Model) next() tea.Cmd {
	if m.opts.Fetch == nil {
		return nil
	}
	return tea.Tick(m.opts.Interval, func(time.Time) tea.Msg { return refreshMsg{} })
}

// Problem is why the last fetch failed; OK after a success.
func (m Model) Problem() Problem { return Classify(m.err) }

// Snapshot is the last snapshot fetched, nil before the first.
func (m Model) Snapshot() *Snapshot { return m.snap }

// Sort returns the workers' order and whether it is descending.
func (m Model) Sort() (SortKey, bool) { return m.sortBy, m.desc }

// workers returns the snapshot's workers in the chosen order; ties go by
// name so rows do not jump between refreshes.
func (m Model) workers() []api.Worker {
	if m.snap == nil {
		return nil
	}
	ws := slices.Clone(m.snap.Workers)
	key := func(a, b api.Worker) int {
		switch m.sortBy {
		case ByCPU:
			return cmp.Compare(a.CPUPercent, b.CPUPercent)
		case ByMemory:
			return cmp.Compare(a.MemoryPercent, b.MemoryPercent)
		case BySlots:
			return cmp.Or(cmp.Compare(a.Running, b.Running), cmp.Compare(a.Slots, b.Slots))
		case ByJobs:
			return cmp.Compare(a.JobsDone, b.JobsDone)
		}
		return 0
	}
	slices.SortStableFunc(ws, func(a, b api.Worker) int {
		c := key(a, b)
		if c == 0 {
			c = strings.Compare(a.Name, b.Name)
			if m.sortBy != ByName {
				return c // ties always A to Z
			}
		}
		if m.desc {
			return -c
		}
		return c
	})
	return ws
}
