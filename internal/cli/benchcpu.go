package cli

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// cpuTimes is the machine's CPU time from /proc/stat, in clock ticks:
// busy (user, nice, system, irq, softirq), steal (taken by the hypervisor
// for other guests) and the total.
type cpuTimes struct{ busy, steal, total uint64 }

// clockTicks is USER_HZ, the unit of /proc/stat: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// readCPUTimes reads /proc/stat; false where there is none.
func readCPUTimes() (cpuTimes, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return cpuTimes{}, false
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(line)
	if err != nil || len(fields) < 9 || fields[0] != "cpu" {
		return cpuTimes{}, false
	}
	var v [8]uint64
	for i := range v {
		if v[i], err = strconv.ParseUint(fields[i+1], 10, 64); err != nil {
			return cpuTimes{}, false
		}
	}
	user, nice, system, idle, iowait, irq, softirq, steal := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]
	busy := user + nice + system + irq + softirq
	return cpuTimes{busy: busy, steal: steal, total: busy + idle + iowait + steal}, true
}

// printCPU says what the run cost the whole machine: every process on it
// (this client, the cluster, the programs, anything else running), per job,
// and the share of time the hypervisor gave to other guests, which makes
// a run slower without any process using more.
func printCPU(w io.Writer, what string, before, after cpuTimes, jobs int) {
	total := after.total - before.total
	if total == 0 || jobs == 0 {
		return
	}
	busyMs := float64(after.busy-before.busy) * 1000 / clockTicks
	fmt.Fprintf(w, "machine CPU during the %s run: %.2f ms per job (all processes), %.0f%% busy, %.1f%% stolen by the hypervisor\n",
		what, busyMs/float64(jobs), 100*float64(after.busy-before.busy)/float64(total), 100*float64(after.steal-before.steal)/float64(total))
}
