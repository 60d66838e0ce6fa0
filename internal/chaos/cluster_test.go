package chaos

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/clustertest"
)

// proc is one grappe process of the cluster, logging to its own file.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.kill9()
	}
}

// masterNode is one master of the cluster: its addresses and data
// directory stay across its restarts.
type masterNode struct {
	id                   string // --master-id, and the name of its logs
	data                 string // --data
	apiAddr, clusterAddr string
	proc                 *proc // the running process; nil once killed
}

// cluster is the set of processes of one chaos run.
type cluster struct {
	bin, dir string
	// database is the PostgreSQL URL the masters share; empty for one
	// master on SQLite in its data directory.
	database string

	mu      sync.Mutex
	masters []*masterNode
	workers map[string]*proc
	logs    []string
	started int // workers started so far, for names
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// newCluster prepares a cluster of n masters (their ports and data
// directories) sharing database, or one master on SQLite when database is
// empty. No process starts yet.
func newCluster(t *testing.T, n int, database string) *cluster {
	c := &cluster{bin: clustertest.BuildGrappe(t), dir: t.TempDir(), database: database, workers: map[string]*proc{}}
	for i := range n {
		m := &masterNode{id: "master", apiAddr: freePort(t), clusterAddr: freePort(t)}
		if n > 1 {
			m.id = fmt.Sprintf("m%d", i+1)
		}
		m.data = filepath.Join(c.dir, m.id)
		c.masters = append(c.masters, m)
	}
	t.Cleanup(func() {
		c.stopAll()
		if *keepLogs != "" {
			c.copyLogs(t, *keepLogs)
		}
	})
	return c
}

// copyLogs copies every process log into dir/<test name>, for a look
// after the run (-chaos.logs).
func (c *cluster) copyLogs(t *testing.T, dir string) {
	dst := filepath.Join(dir, t.Name())
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Errorf("keep the logs: %v", err)
		return
	}
	for _, p := range c.logPaths() {
		b, err := os.ReadFile(p)
		if err == nil {
			err = os.WriteFile(filepath.Join(dst, filepath.Base(p)), b, 0o644)
		}
		if err != nil {
			t.Errorf("keep the logs: %v", err)
			return
		}
	}
	t.Logf("logs kept in %s", dst)
}

func (c *cluster) start(name string, args ...string) (*proc, error) {
	c.mu.Lock()
	logPath := filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", name, len(c.logs)))
	c.logs = append(c.logs, logPath)
	c.mu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so that killing it leaves the test alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

// startMaster starts master i (again, after a kill: same ports, same
// data) and waits until its API answers.
func (c *cluster) startMaster(i int) error {
	m := c.masters[i]
	args := []string{"master", "--data", m.data,
		"--listen", m.apiAddr, "--cluster-listen", m.clusterAddr,
		"--heartbeat", "250ms", "--worker-timeout", "2s", "--placement-timeout", "5m",
		"--log-level", "debug"}
	if c.database != "" {
		args = append(args, "--database", c.database, "--master-id", m.id)
	}
	p, err := c.start(m.id, args...)
	if err != nil {
		return err
	}
	c.mu.Lock()
	m.proc = p
	c.mu.Unlock()
	if err := c.waitHealthy(i); err != nil {
		return fmt.Errorf("%w; log %s", err, p.log)
	}
	return nil
}

// killMaster kills master i with kill -9.
func (c *cluster) killMaster(i int) {
	c.mu.Lock()
	p := c.masters[i].proc
	c.masters[i].proc = nil
	c.mu.Unlock()
	if p != nil {
		p.kill9()
	}
}

func (c *cluster) waitHealthy(i int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cl, err := c.client(i); err == nil {
			err = cl.Health(context.Background())
			cl.Close()
			if err == nil {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("master %s not healthy in time", c.masters[i].id)
}

// clusterAddrs lists the masters' cluster addresses for a worker's
// --master, starting with master first (workers spread over the masters).
func (c *cluster) clusterAddrs(first int) string {
	addrs := make([]string, len(c.masters))
	for i := range c.masters {
		addrs[i] = c.masters[(first+i)%len(c.masters)].clusterAddr
	}
	return strings.Join(addrs, ",")
}

func (c *cluster) startWorker() (string, error) {
	c.mu.Lock()
	c.started++
	name := fmt.Sprintf("w%d", c.started)
	first := c.started % len(c.masters)
	c.mu.Unlock()
	p, err := c.start(name, "worker", "--master", c.clusterAddrs(first),
		"--join-token-file", filepath.Join(c.masters[0].data, "join-token"),
		"--name", name, "--max-jobs", "2", "--data", filepath.Join(c.dir, "workers", name),
		"--drain-timeout", "3s", "--insecure-no-sandbox", "--log-level", "debug")
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.workers[name] = p
	c.mu.Unlock()
	return name, nil
}

// client returns a client of master i alone.
func (c *cluster) client(i int) (*client.Client, error) {
	return c.clientOf(c.masters[i : i+1])
}

// clientOf returns a client of the masters ms, moving from one to the
// next when one cannot be reached. The token and CA are the first
// master's (the cluster's, which every master shares).
func (c *cluster) clientOf(ms []*masterNode) (*client.Client, error) {
	token, err := os.ReadFile(filepath.Join(c.masters[0].data, "admin-token"))
	if err != nil {
		return nil, fmt.Errorf("admin token: %w", err)
	}
	addrs := make([]string, len(ms))
	for i, m := range ms {
		addrs[i] = "https://" + m.apiAddr
	}
	return client.New(client.Config{
		Addr:   strings.Join(addrs, ","),
		Token:  strings.TrimSpace(string(token)),
		CAFile: filepath.Join(c.masters[0].data, "ca.pem"),
	})
}

func (c *cluster) stopAll() {
	c.mu.Lock()
	ws := c.workers
	c.workers = map[string]*proc{}
	c.mu.Unlock()
	for _, w := range ws {
		w.stop()
	}
	for i := range c.masters {
		c.mu.Lock()
		p := c.masters[i].proc
		c.masters[i].proc = nil
		c.mu.Unlock()
		if p != nil {
			p.stop()
		}
	}
}

// logLines returns every line of every process log matching re, with
// its submatches.
func (c *cluster) logLines(re *regexp.Regexp) [][]string {
	var out [][]string
	for _, path := range c.logPaths() {
		f, err := os.Open(path)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				out = append(out, m)
			}
		}
		f.Close()
	}
	return out
}

// logPaths lists the logs of every process started so far.
func (c *cluster) logPaths() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.logs)
}
