package top

import (
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/x/ansi"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/client"
)

const addr = "https://m:7443"

// at is the fixture's fetch time, in the local zone so that the rendered
// clock reads 12:00:00 wherever the test runs.
var at = time.Date(2026, 3, 1, 12, 0, 0, 0, time.Local)

func fixture() *Snapshot {
	langs := func(names ...string) []api.WorkerLanguage {
		var ls []api.WorkerLanguage
		for _, n := range names {
			ls = append(ls, api.WorkerLanguage{Name: n, Version: "1"})
		}
		return ls
	}
	return &Snapshot{
		Time: at,
		Cluster: api.Cluster{
			Workers: map[string]int{api.WorkerUp: 2, api.WorkerDraining: 1, api.WorkerLost: 0},
			Jobs: map[string]int{api.StatusQueued: 4, api.StatusRunning: 3, api.StatusDone: 120,
				api.StatusFailed: 2, api.StatusCancelled: 1},
			Clients: 2, Slots: 8, SlotsInUse: 3, QueueDepth: 4,
		},
		Workers: []api.Worker{
			{Name: "alpha", Status: api.WorkerUp, Sandbox: "cgroup-v2", Slots: 4, Running: 1,
				CPUPercent: 10, MemoryPercent: 80, JobsDone: 5, LastHeartbeat: at.Add(-300 * time.Millisecond),
				Languages: langs("c", "python")},
			{Name: "bravo", Status: api.WorkerDraining, Sandbox: "cgroup-v1", Slots: 2, Running: 2,
				CPUPercent: 95, MemoryPercent: 20, JobsDone: 50, LastHeartbeat: at.Add(-2 * time.Second),
				Languages: langs("java")},
			{Name: "charlie", Status: api.WorkerUp, Sandbox: "none", Slots: 2, Running: 0,
				CPUPercent: 50, MemoryPercent: 50, JobsDone: 1, LastHeartbeat: at.Add(-time.Second),
				Languages: langs("bash")},
		},
		Clients: []api.Client{
			{User: "admin", Address: "10.0.0.1", Since: at.Add(-90 * time.Second), JobsTotal: 100, JobsRunning: 2, JobsQueued: 4},
			{User: "alice", Address: "10.0.0.2", Since: at.Add(-5 * time.Minute), JobsTotal: 26, JobsRunning: 1},
		},
		Stats: api.Stats{IntervalSeconds: 5, Points: []api.StatsPoint{
			{Time: at.Add(-10 * time.Second), Completed: 1, Submitted: 1},
			{Time: at.Add(-5 * time.Second), Completed: 2, Submitted: 3, QueueWaitMs: 12.4},
		}},
	}
}

func key(s string) tea.KeyMsg {
	switch s {
	case "ctrl+c":
		return tea.KeyMsg{Type: tea.KeyCtrlC}
	case "esc":
		return tea.KeyMsg{Type: tea.KeyEsc}
	}
	return tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(s)}
}

// feed applies messages in order.
func feed(m Model, msgs ...tea.Msg) Model {
	for _, msg := range msgs {
		next, _ := m.Update(msg)
		m = next.(Model)
	}
	return m
}

func loaded() Model {
	return feed(New(Options{Addr: addr}), Result{Time: at, Snapshot: fixture()})
}

func names(ws []api.Worker) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Name)
	}
	return out
}

func TestSortKeys(t *testing.T) {
	tests := []struct {
		keys []string
		want []string
		by   SortKey
		desc bool
	}{
		{nil, []string{"alpha", "bravo", "charlie"}, ByName, false},
		{[]string{"n"}, []string{"charlie", "bravo", "alpha"}, ByName, true},
		{[]string{"n", "n"}, []string{"alpha", "bravo", "charlie"}, ByName, false},
		{[]string{"c"}, []string{"bravo", "charlie", "alpha"}, ByCPU, true},
		{[]string{"c", "c"}, []string{"alpha", "charlie", "bravo"}, ByCPU, false},
		{[]string{"m"}, []string{"alpha", "charlie", "bravo"}, ByMemory, true},
		{[]string{"s"}, []string{"bravo", "alpha", "charlie"}, BySlots, true},
		{[]string{"j"}, []string{"bravo", "alpha", "charlie"}, ByJobs, true},
		{[]string{"c", "n"}, []string{"alpha", "bravo", "charlie"}, ByName, false},
		{[]string{"x", "1"}, []string{"alpha", "bravo", "charlie"}, ByName, false}, // unknown keys change nothing
	}
	for _, tt := range tests {
		m := loaded()
		for _, k := range tt.keys {
			m = feed(m, key(k))
		}
		if got := names(m.workers()); !slices.Equal(got, tt.want) {
			t.Errorf("keys %v: order %v, want %v", tt.keys, got, tt.want)
		}
		if by, desc := m.Sort(); by != tt.by || desc != tt.desc {
			t.Errorf("keys %v: sort (%d, %v), want (%d, %v)", tt.keys, by, desc, tt.by, tt.desc)
		}
		// The screen shows the same order.
		v := m.View()
		pos := func(s string) int { return strings.Index(v, "\n"+s+" ") }
		for i := 1; i < len(tt.want); i++ {
			if pos(tt.want[i-1]) > pos(tt.want[i]) {
				t.Errorf("keys %v: %s is shown after %s:\n%s", tt.keys, tt.want[i-1], tt.want[i], v)
			}
		}
	}
}

func TestSortTiesByName(t *testing.T) {
	s := fixture()
	for i := range s.Workers {
		s.Workers[i].CPUPercent = 7
	}
	m := feed(New(Options{}), Result{Time: at, Snapshot: s}, key("c"))
	if got := names(m.workers()); !slices.Equal(got, []string{"alpha", "bravo", "charlie"}) {
		t.Errorf("equal CPU: %v, want by name", got)
	}
}

// TestText pins the whole plain rendering of a snapshot: alignment,
// counters, throughput, the sandbox warning.
func TestText(t *testing.T) {
	want := `grappe top  https://m:7443  updated 12:00:00
workers  2 up  1 draining  0 unhealthy  0 lost    slots 3/8 used    queue 4
jobs     4 queued  3 running  120 done  2 failed  1 cancelled
rate     0.40 done/s  0.60 submitted/s  queue wait 12ms  (last 5s)
 ! 1 worker(s) run jobs WITHOUT A SANDBOX: charlie 

WORKERS (3)
NAME↑    STATUS    SANDBOX          SLOTS  CPU%  MEM%  DONE  INFRA  BEAT  LANGUAGES
alpha    up        cgroup-v2          1/4  10.0  80.0     5      0  0.3s  c,python
bravo    draining  cgroup-v1          2/2  95.0  20.0    50      0  2.0s  java
charlie  up        none (INSECURE)    0/2  50.0  50.0     1      0  1.0s  bash

CLIENTS (2, seen in the last minutes)
USER   ADDRESS   SINCE  JOBS  RUNNING  QUEUED
admin  10.0.0.1     1m   100        2       4
alice  10.0.0.2     5m    26        1       0
`
	if got := loaded().Text(); got != want {
		t.Errorf("Text:\n%s\nwant:\n%s", got, want)
	}
}

func TestViewStates(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	forbidden := &client.Error{Status: 403, Code: api.CodeForbidden, Message: "admin only"}
	unauthorized := &client.Error{Status: 401, Code: api.CodeUnauthorized, Message: "invalid token"}
	failing := &client.Error{Status: 500, Code: api.CodeInternal, Message: "store: disk full"}
	later := at.Add(5 * time.Second)

	tests := []struct {
		name    string
		msgs    []tea.Msg
		problem Problem
		has     []string
		hasNot  []string
	}{
		{"connecting", nil, OK,
			[]string{"connecting to https://m:7443", Help}, []string{"WORKERS"}},
		{"snapshot", []tea.Msg{Result{Time: at, Snapshot: fixture()}}, OK,
			[]string{"2 up", "1 draining", "slots 3/8 used", "queue 4", "120 done", "WITHOUT A SANDBOX: charlie", "alice", Help},
			[]string{"stale", "unreachable"}},
		{"unreachable at start", []tea.Msg{Result{Time: at, Err: refused}}, Unreachable,
			[]string{"master unreachable at https://m:7443: dial tcp: connect: connection refused", "retrying every 1s", "no data yet"},
			[]string{"WORKERS"}},
		{"unreachable keeps the last data", []tea.Msg{
			Result{Time: at, Snapshot: fixture()},
			Result{Time: at.Add(time.Second), Err: refused},
			Result{Time: later, Err: refused},
		}, Unreachable,
			[]string{"master unreachable", "(4.0s), retrying", "updated 12:00:00 (stale)", "alpha", "bravo"}, nil},
		{"back after unreachable", []tea.Msg{
			Result{Time: at, Err: refused},
			Result{Time: later, Snapshot: fixture()},
		}, OK, []string{"alpha"}, []string{"unreachable", "stale"}},
		{"forbidden", []tea.Msg{Result{Time: at, Err: forbidden}}, Forbidden,
			[]string{"needs an admin token", "403", "admin-token"}, []string{"WORKERS"}},
		{"unauthorized", []tea.Msg{Result{Time: at, Err: unauthorized}}, Unauthorized,
			[]string{"refused the token (401", "grappe login"}, nil},
		{"master error", []tea.Msg{Result{Time: at, Err: failing}}, Failing,
			[]string{"the master answered with an error: store: disk full"}, nil},
		{"no workers", []tea.Msg{Result{Time: at, Snapshot: &Snapshot{Time: at}}}, OK,
			[]string{"WORKERS (0)", "no worker has joined", "CLIENTS (0", "no interval complete yet"}, []string{"SANDBOX"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := feed(New(Options{Addr: addr}), tt.msgs...)
			if p := m.Problem(); p != tt.problem {
				t.Errorf("problem %d, want %d", p, tt.problem)
			}
			v := m.View()
			for _, s := range tt.has {
				if !strings.Contains(v, s) {
					t.Errorf("view lacks %q:\n%s", s, v)
				}
			}
			for _, s := range tt.hasNot {
				if strings.Contains(v, s) {
					t.Errorf("view has %q:\n%s", s, v)
				}
			}
		})
	}
}

func TestQuitKeys(t *testing.T) {
	for _, k := range []string{"q", "ctrl+c", "esc"} {
		next, cmd := loaded().Update(key(k))
		if cmd == nil {
			t.Fatalf("%s: no command", k)
		}
		if _, ok := cmd().(tea.QuitMsg); !ok {
			t.Errorf("%s: command is not tea.Quit", k)
		}
		if v := next.View(); v != "" {
			t.Errorf("%s: view after quit is %q, want empty", k, v)
		}
	}
	if _, cmd := loaded().Update(key("c")); cmd != nil {
		t.Errorf("a sort key returned a command")
	}
}

func TestWindowSize(t *testing.T) {
	s := fixture()
	for i := range 30 {
		s.Workers = append(s.Workers, api.Worker{Name: "extra" + string(rune('a'+i%26)) + string(rune('a'+i/26)), Status: api.WorkerUp, Slots: 1})
	}
	m := feed(New(Options{Addr: addr}), Result{Time: at, Snapshot: s}, tea.WindowSizeMsg{Width: 50, Height: 24})
	lines := strings.Split(m.View(), "\n")
	if len(lines) > 24 {
		t.Errorf("%d lines for a 24-line window:\n%s", len(lines), m.View())
	}
	for _, l := range lines {
		if w := ansi.StringWidth(l); w > 50 {
			t.Errorf("line of width %d in a 50-column window: %q", w, l)
		}
	}
	v := m.View()
	for _, want := range []string{"more", "CLIENTS", Help[:20]} {
		if !strings.Contains(v, want) {
			t.Errorf("short window lacks %q:\n%s", want, v)
		}
	}

	// The failure banner wraps instead of losing its end at the edge.
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	m = feed(m, Result{Time: at, Err: refused})
	v = m.View()
	if !strings.Contains(v, "retrying every 1s") {
		t.Errorf("banner cut in a 50-column window:\n%s", v)
	}
	for _, l := range strings.Split(v, "\n") {
		if w := ansi.StringWidth(l); w > 50 {
			t.Errorf("line of width %d in a 50-column window: %q", w, l)
		}
	}
}

func TestFetchLoop(t *testing.T) {
	calls := 0
	m := New(Options{Addr: addr, Interval: time.Millisecond, Fetch: func() Result {
		calls++
		return Result{Time: at, Snapshot: fixture()}
	}})
	cmd := m.Init()
	if cmd == nil {
		t.Fatal("Init fetches nothing")
	}
	msg := cmd()
	if _, ok := msg.(Result); !ok || calls != 1 {
		t.Fatalf("Init's command gave %T after %d fetches", msg, calls)
	}
	next, cmd := m.Update(msg)
	if cmd == nil {
		t.Fatal("no next refresh after a result")
	}
	// The refresh is a tick, then a fetch: never two fetches at once.
	tick := cmd()
	if _, ok := tick.(refreshMsg); !ok {
		t.Fatalf("tick gave %T", tick)
	}
	_, cmd = next.Update(tick)
	if _, ok := cmd().(Result); !ok || calls != 2 {
		t.Errorf("refresh did not fetch (%d fetches)", calls)
	}
	// A failure is retried on the same schedule.
	_, cmd = next.Update(Result{Time: at, Err: errors.New("boom")})
	if cmd == nil {
		t.Error("no retry after a failed fetch")
	}
}

func TestClassifyAndWrap(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	err := Wrap(refused, addr)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("Wrap lost the cause: %v", err)
	}
	if Wrap(nil, addr) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	if got := pickError([]error{refused, &client.Error{Status: 403}, nil}); Classify(got) != Forbidden {
		t.Errorf("pickError chose %v, want the 403", got)
	}
}

// TestUnhealthyWorker shows an unhealthy worker, why, and its count of
// infrastructure failures.
func TestUnhealthyWorker(t *testing.T) {
	s := fixture()
	s.Cluster.Workers[api.WorkerUnhealthy] = 1
	s.Workers[0].Status, s.Workers[0].InfraFailures = api.WorkerUnhealthy, 3
	s.Workers[0].Health = "sandbox: join cgroup: no such device"
	got := feed(New(Options{}), Result{Time: at, Snapshot: s}).Text()
	for _, want := range []string{"1 unhealthy", " ! alpha is unhealthy (3 infrastructure failures): sandbox: join cgroup: no such device",
		"alpha    unhealthy"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q in:\n%s", want, got)
		}
	}
}
