package worker

import (
	"sync"

	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/mem"
)

// loadSampler reports the machine's CPU use since the previous sample and
// its memory use, for the heartbeats the scheduler balances on.
type loadSampler struct {
	mu sync.Mutex
}

func newLoadSampler() *loadSampler {
	s := &loadSampler{}
	_, _ = cpu.Percent(0, false) // prime the counter: the next call measures from here
	return s
}

func (s *loadSampler) sample() (cpuPercent, memPercent float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, err := cpu.Percent(0, false); err == nil && len(p) > 0 {
		cpuPercent = p[0]
	}
	if v, err := mem.VirtualMemory(); err == nil {
		memPercent = v.UsedPercent
	}
	return cpuPercent, memPercent
}
