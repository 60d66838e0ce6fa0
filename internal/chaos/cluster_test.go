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

// cluster is the set of processes of one chaos run.
type cluster struct {
	t                   *testing.T
	bin, dir            string
	apiAddr, clusterAdr string

	mu      sync.Mutex
	master  *proc
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

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, bin: clustertest.BuildGrappe(t), dir: t.TempDir(), workers: map[string]*proc{}}
	c.apiAddr, c.clusterAdr = freePort(t), freePort(t)
	t.Cleanup(c.stopAll)
	return c
}

func (c *cluster) start(name string, args ...string) *proc {
	c.t.Helper()
	logPath := filepath.Join(c.dir, fmt.Sprintf("%s-%d.log", name, len(c.logs)))
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(c.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	// Its own process group, so that killing it leaves the test alone.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		c.t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.logs = append(c.logs, logPath)
	return p
}

func (c *cluster) startMaster() {
	c.master = c.start("master", "master", "--data", filepath.Join(c.dir, "master"),
		"--listen", c.apiAddr, "--cluster-listen", c.clusterAdr,
		"--heartbeat", "250ms", "--worker-timeout", "2s", "--placement-timeout", "5m",
		"--log-level", "debug")
	c.waitHealthy()
}

func (c *cluster) waitHealthy() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cl, err := c.client(); err == nil {
			err = cl.Health(context.Background())
			cl.Close()
			if err == nil {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("master not healthy in time; log %s", c.master.log)
}

func (c *cluster) startWorker() string {
	c.mu.Lock()
	c.started++
	name := fmt.Sprintf("w%d", c.started)
	c.mu.Unlock()
	p := c.start(name, "worker", "--master", c.clusterAdr,
		"--join-token-file", filepath.Join(c.dir, "master", "join-token"),
		"--name", name, "--max-jobs", "2", "--data", filepath.Join(c.dir, "workers", name),
		"--drain-timeout", "3s", "--insecure-no-sandbox", "--log-level", "debug")
	c.mu.Lock()
	c.workers[name] = p
	c.mu.Unlock()
	return name
}

func (c *cluster) client() (*client.Client, error) {
	token, err := os.ReadFile(filepath.Join(c.dir, "master", "admin-token"))
	if err != nil {
		return nil, err
	}
	return client.New(client.Config{
		Addr:   "https://" + c.apiAddr,
		Token:  strings.TrimSpace(string(token)),
		CAFile: filepath.Join(c.dir, "master", "ca.pem"),
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
	if c.master != nil {
		c.master.stop()
	}
}

// logLines returns every line of every process log matching re, with
// its submatches.
func (c *cluster) logLines(re *regexp.Regexp) [][]string {
	var out [][]string
	for _, path := range c.logs {
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
