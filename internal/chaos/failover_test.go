package chaos

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// Failover times, read from the workers' logs: from the kill -9 of a
// master to the moment each worker that was linked to it is connected to
// another master, and to the moment it starts a new job there.

// masterKill is one kill -9 of a master.
type masterKill struct {
	master string // its id
	addr   string // its cluster address, as the workers name it
	at     time.Time
}

// workerEvent is one line of a worker's log that tells where it is.
type workerEvent struct {
	at     time.Time
	kind   string // "connected", "disconnected" or "started"
	master string // for connected and disconnected
}

// failover is what one worker linked to a killed master did next.
type failover struct {
	worker    string
	to        string        // the master it connected to; empty if none
	reconnect time.Duration // kill → connected elsewhere
	newJob    time.Duration // kill → a new attempt started; 0 if none
	killed    bool          // killed in the window, before or after it failed over
}

var workerEventRe = regexp.MustCompile(`^time=(\S+) level=\w+ msg="(connected to master|disconnected from master; reconnecting|attempt started)" worker=(\w+)(?: master=(\S+))?`)

// eventKinds names the workers' log messages workerEventRe reads.
var eventKinds = map[string]string{
	"connected to master":                    "connected",
	"disconnected from master; reconnecting": "disconnected",
	"attempt started":                        "started",
}

// workerEvents reads the workers' logs: worker name → its events, in order.
func workerEvents(c *cluster) map[string][]workerEvent {
	out := map[string][]workerEvent{}
	for _, m := range c.logLines(workerEventRe) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err != nil {
			continue
		}
		out[m[3]] = append(out[m[3]], workerEvent{at: at, kind: eventKinds[m[2]], master: m[4]})
	}
	return out
}

// failovers finds, for kill k, the workers linked to its master at the
// kill and what each did in the window after it. A worker killed before
// the master (workerKills: name → when) is left out, its log lies about
// its link; one killed in the window is followed until its kill, and
// marked killed.
func failovers(events map[string][]workerEvent, workerKills map[string]time.Time, k masterKill, window time.Duration) []failover {
	var out []failover
	for w, evs := range events {
		end := k.at.Add(window)
		f := failover{worker: w}
		if killed, ok := workerKills[w]; ok && killed.Before(end) {
			if killed.Before(k.at) {
				continue
			}
			end, f.killed = killed, true
		}
		i, _ := slices.BinarySearchFunc(evs, k.at, func(e workerEvent, at time.Time) int { return e.at.Compare(at) })
		if !linkedAt(evs[:i], k.addr) {
			continue
		}
		for _, e := range evs[i:] {
			if e.at.After(end) {
				break
			}
			switch {
			case e.kind == "connected" && f.to == "":
				f.to, f.reconnect = e.master, e.at.Sub(k.at)
			case e.kind == "started" && f.to != "" && f.newJob == 0:
				f.newJob = e.at.Sub(k.at)
			}
		}
		out = append(out, f)
	}
	slices.SortFunc(out, func(a, b failover) int { return strings.Compare(a.worker, b.worker) })
	return out
}

// linkedAt reports whether the last link event of evs is a connection to
// addr.
func linkedAt(evs []workerEvent, addr string) bool {
	for i := len(evs) - 1; i >= 0; i-- {
		switch evs[i].kind {
		case "connected":
			return evs[i].master == addr
		case "disconnected":
			return false
		}
	}
	return false
}

// failoverReport logs every kill's failovers and returns the sorted
// times to reconnect and to a new job, and the workers that did not
// reconnect in the window (when it ended before end, the end of the run).
func failoverReport(t *testing.T, c *cluster, kills []masterKill, workerKills map[string]time.Time, window time.Duration, end time.Time) (reconnect, newJob []time.Duration, stuck []string) {
	t.Helper()
	events := workerEvents(c)
	names := map[string]string{}
	for _, m := range c.masters {
		names[m.clusterAddr] = m.id
	}
	for _, k := range kills {
		var parts []string
		for _, f := range failovers(events, workerKills, k, window) {
			switch {
			case f.to == "" && f.killed:
				parts = append(parts, f.worker+": killed before it reconnected")
				continue
			case f.to == "" && k.at.Add(window).After(end):
				parts = append(parts, f.worker+": not reconnected before the end of the run")
				continue
			case f.to == "":
				stuck = append(stuck, fmt.Sprintf("%s after the kill of %s at %s: not reconnected within %v", f.worker, k.master, k.at.Format(time.TimeOnly), window))
				parts = append(parts, f.worker+": not reconnected")
				continue
			case f.newJob == 0:
				parts = append(parts, fmt.Sprintf("%s: → %s in %v, no new job in the window (killed: %v)", f.worker, names[f.to], f.reconnect.Round(time.Millisecond), f.killed))
			default:
				parts = append(parts, fmt.Sprintf("%s: → %s in %v, new job in %v", f.worker, names[f.to], f.reconnect.Round(time.Millisecond), f.newJob.Round(time.Millisecond)))
				newJob = append(newJob, f.newJob)
			}
			reconnect = append(reconnect, f.reconnect)
		}
		t.Logf("failover after kill -9 %s at %s: %s", k.master, k.at.Format("15:04:05.000"), strings.Join(parts, "; "))
	}
	slices.Sort(reconnect)
	slices.Sort(newJob)
	return reconnect, newJob, stuck
}

// spread formats p50/p99/max of sorted ds.
func spread(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none measured"
	}
	r := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	return fmt.Sprintf("p50 %v, p99 %v, max %v (n=%d)", r(percentile(ds, 0.5)), r(percentile(ds, 0.99)), r(ds[len(ds)-1]), len(ds))
}
