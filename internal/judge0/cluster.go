package judge0

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/auth"
	"github.com/grappe/grappe/internal/store"
)

// statsFor is how long GET /statistics keeps its answer: counting reads
// every job, so it is not done for every request (Judge0 keeps it ten
// minutes).
const statsFor = time.Minute

// systemInfo is GET /system_info: on Judge0, lscpu and free -h of the
// machine that serves the API; here, the same keys for the master's
// machine, plus the cluster's workers and slots (the machines that run
// the programs are those).
func (h *handler) systemInfo(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	out := map[string]string{
		"Architecture": machine(runtime.GOARCH),
		"CPU(s)":       strconv.Itoa(runtime.NumCPU()),
	}
	if infos, err := cpu.InfoWithContext(r.Context()); err == nil && len(infos) > 0 {
		c := infos[0]
		out["Vendor ID"], out["Model name"] = c.VendorID, c.ModelName
		out["CPU family"], out["Model"], out["Stepping"] = c.Family, c.Model, strconv.Itoa(int(c.Stepping))
		out["CPU MHz"] = strconv.FormatFloat(c.Mhz, 'f', 3, 64)
	}
	if vm, err := mem.VirtualMemoryWithContext(r.Context()); err == nil {
		out["Mem"] = humanBytes(vm.Total)
	}
	if sw, err := mem.SwapMemoryWithContext(r.Context()); err == nil {
		out["Swap"] = humanBytes(sw.Total)
	}
	workers, slots := 0, 0
	for _, wk := range h.Backend.Workers(r.Context()) {
		if wk.Status != api.WorkerLost {
			workers++
			slots += wk.Slots
		}
	}
	out["Workers"], out["Slots"] = strconv.Itoa(workers), strconv.Itoa(slots)
	writeJSON(w, http.StatusOK, out)
	return nil
}

// machine is uname -m's name for a GOARCH.
func machine(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	}
	return goarch
}

// humanBytes writes a size as free -h does: 7.7Gi, 512Mi, 0B.
func humanBytes(n uint64) string {
	units := []string{"B", "Ki", "Mi", "Gi", "Ti", "Pi"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if i == 0 || v >= 10 {
		return fmt.Sprintf("%.0f%s", v, units[i])
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}

// queue is one entry of GET /workers. Judge0 has one queue per version
// of itself; grappe has one per language, the workers that run it
// serving it.
type queue struct {
	Queue     string `json:"queue"`
	Size      int    `json:"size"`
	Available int    `json:"available"`
	Idle      int    `json:"idle"`
	Working   int    `json:"working"`
	Paused    int    `json:"paused"`
}

// workers is GET /workers: for each language some worker runs or some
// job waits for, its queued jobs and the workers that run it: working
// (running a job), idle (up, with nothing to do) or paused (draining or
// unhealthy, with nothing running). Lost workers are not counted.
func (h *handler) workers(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	queued, err := h.Backend.QueuedByLanguage(r.Context())
	if err != nil {
		return err
	}
	byName := map[string]*queue{}
	get := func(name string) *queue {
		q := byName[name]
		if q == nil {
			q = &queue{Queue: name}
			byName[name] = q
		}
		return q
	}
	for name, n := range queued {
		get(name).Size = n
	}
	for _, wk := range h.Backend.Workers(r.Context()) {
		if wk.Status == api.WorkerLost {
			continue
		}
		for _, l := range wk.Languages {
			q := get(l.Name)
			q.Available++
			switch {
			case wk.Running > 0:
				q.Working++
			case wk.Status == api.WorkerUp:
				q.Idle++
			default:
				q.Paused++
			}
		}
	}
	out := make([]queue, 0, len(byName))
	for _, q := range byName {
		out = append(out, *q)
	}
	slices.SortFunc(out, func(a, b queue) int { return strings.Compare(a.Queue, b.Queue) })
	writeJSON(w, http.StatusOK, out)
	return nil
}

// statsCache holds the last answer of GET /statistics.
type statsCache struct {
	mu    sync.Mutex
	body  []byte
	until time.Time
}

// statistics is GET /statistics, in Judge0's shape: the jobs of the
// whole cluster (whichever API submitted them) in all, today and on each
// of the 30 days before, by language and by status. A job's Judge0 status
// here comes from its grappe status and verdict: a runtime error counts
// as Runtime Error (NZEC), whatever signal ended it (the count does not
// read each job's result, where GET /submissions/{token} does).
// invalidate_cache is accepted and has no effect: the answer is
// recomputed at most once a minute.
func (h *handler) statistics(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	h.stats.mu.Lock()
	defer h.stats.mu.Unlock()
	now := time.Now().UTC()
	if h.stats.body == nil || now.After(h.stats.until) {
		body, err := h.computeStatistics(r.Context(), now)
		if err != nil {
			return err
		}
		h.stats.body, h.stats.until = body, now.Add(statsFor)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(h.stats.body)
	return nil
}

type languageCount struct {
	Language struct {
		ID   *int   `json:"id"`
		Name string `json:"name"`
	} `json:"language"`
	Count int `json:"count"`
}

type statusCount struct {
	Status struct {
		ID   int    `json:"id"`
		Name string `json:"name"`
	} `json:"status"`
	Count int `json:"count"`
}

func (h *handler) computeStatistics(ctx context.Context, now time.Time) ([]byte, error) {
	today := now.Truncate(24 * time.Hour)
	tally, err := h.Backend.TallyJobs(ctx, today.AddDate(0, 0, -30))
	if err != nil {
		return nil, err
	}
	versions := map[string]string{}
	for _, l := range h.Backend.Languages(ctx) {
		versions[l.Name] = l.Version
	}
	total := 0
	byLanguage, byStatus := map[string]int{}, map[int]int{}
	for _, k := range tally.Kinds {
		total += k.N
		byLanguage[k.Language] += k.N
		byStatus[tallyStatus(k)] += k.N
	}
	languages := make([]languageCount, 0, len(byLanguage))
	for name, n := range byLanguage {
		var c languageCount
		c.Count, c.Language.Name = n, name
		if l, ok := languageByName(name); ok {
			c.Language.ID, c.Language.Name = &l.ID, l.name(versions[name])
		}
		languages = append(languages, c)
	}
	slices.SortFunc(languages, func(a, b languageCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Language.Name, b.Language.Name)
	})
	sts := make([]statusCount, 0, len(byStatus))
	for id, n := range byStatus {
		var c statusCount
		c.Count, c.Status.ID, c.Status.Name = n, id, status(id).Description
		sts = append(sts, c)
	}
	slices.SortFunc(sts, func(a, b statusCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return a.Status.ID - b.Status.ID
	})
	// The 30 days before today, newest first, as Judge0 lists them.
	var days orderedCounts
	for d := 1; d <= 30; d++ {
		day := today.AddDate(0, 0, -d)
		days = append(days, dayCount{day.Format(time.DateOnly), tally.Days[day]})
	}
	return json.Marshal(map[string]any{
		"created_at":   railsTime(now),
		"cached_until": railsTime(now.Add(statsFor)),
		"submissions":  map[string]any{"total": total, "today": tally.Days[today], "last_30_days": days},
		"languages":    languages,
		"statuses":     sts,
		"database":     map[string]any{"size_pretty": prettySize(tally.Bytes), "size_in_bytes": tally.Bytes},
	})
}

// tallyStatus is the Judge0 status of the jobs of one kind.
func tallyStatus(k store.KindCount) int {
	switch k.Status {
	case api.StatusQueued:
		return stInQueue
	case api.StatusRunning:
		return stProcessing
	case api.StatusCancelled, api.StatusFailed:
		return stInternal
	}
	switch k.Verdict {
	case api.VerdictOK:
		return stAccepted
	case api.VerdictWrongAnswer:
		return stWrongAnswer
	case api.VerdictTimeLimit:
		return stTimeLimit
	case api.VerdictCompileError:
		return stCompileError
	case api.VerdictOutputLimit:
		return stSIGXFSZ
	case api.VerdictMemoryLimit:
		return stOther
	case api.VerdictRuntimeError:
		return stNZEC
	}
	return stInternal
}

type dayCount struct {
	day string
	n   int
}

// orderedCounts is a JSON object whose keys keep their order.
type orderedCounts []dayCount

func (o orderedCounts) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, d := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%q:%d", d.day, d.n)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// prettySize writes a size as PostgreSQL's pg_size_pretty does (Judge0
// shows its database's): bytes up to 10 kB, then kB, MB, GB, TB.
func prettySize(n int64) string {
	units := []string{"bytes", "kB", "MB", "GB", "TB"}
	i := 0
	for n >= 10*1024 && i < len(units)-1 {
		n = (n + 512) / 1024
		i++
	}
	return fmt.Sprintf("%d %s", n, units[i])
}
