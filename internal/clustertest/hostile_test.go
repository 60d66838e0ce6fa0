package clustertest_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/grappe/grappe/api"
	"github.com/grappe/grappe/internal/clustertest"
)

// TestHostilePrograms sends the programs the sandbox must contain through
// the whole cluster: each ends with the right verdict, and the next job on
// the same worker runs normally. The sandbox package tests each mechanism
// in depth; this checks the verdicts users see.
func TestHostilePrograms(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root: these programs are only run inside it")
	}
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 2}}})
	if kind := clustertest.SharedToolbox(t).Sandbox; kind == "none" {
		t.Fatalf("running as root but the sandbox is %q", kind)
	}
	c.WaitLanguage("bash")
	c.WaitLanguage("c")
	c.WaitLanguage("python")
	// A port of the master's machine the programs must not reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	dataDir := c.DataDir

	small := api.Limits{CPUMs: 2000, WallMs: 4000, MemoryMB: 64, Processes: 32, OutputKB: 64}
	for _, tc := range []struct {
		name, lang, src string
		verdicts        []string // any of these
		check           func(t *testing.T, j *api.Job)
	}{
		{"fork bomb", "bash", ":(){ :|:& };:", []string{api.VerdictTimeLimit, api.VerdictRuntimeError, api.VerdictOK}, nil},
		{"memory bomb", "c", "#include <stdlib.h>\n#include <string.h>\nint main(){for(;;){char*p=malloc(1<<20);if(!p)return 3;memset(p,1,1<<20);}}", []string{api.VerdictMemoryLimit}, nil},
		{"infinite loop", "c", "int main(){volatile int x=0;for(;;)x++;}", []string{api.VerdictTimeLimit}, nil},
		{"sleep forever", "bash", "sleep 1000", []string{api.VerdictTimeLimit}, nil},
		{"a gigabyte of output", "c", "#include <stdio.h>\nint main(){static char b[1<<16];for(int i=0;i<16384;i++)fwrite(b,1,sizeof b,stdout);}", []string{api.VerdictOutputLimit},
			func(t *testing.T, j *api.Job) {
				if !j.Run.OutputTruncated {
					t.Errorf("output not marked truncated")
				}
			}},
		{"connect to the master's machine", "python", fmt.Sprintf("import socket\ns=socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', %d))\nprint('connected')", port), []string{api.VerdictRuntimeError}, nil},
		{"connect elsewhere", "python", "import socket\ns=socket.socket()\ns.settimeout(2)\ns.connect(('1.1.1.1', 53))\nprint('connected')", []string{api.VerdictRuntimeError}, nil},
		{"resolve a name", "python", "import socket\nprint(socket.gethostbyname('example.com'))", []string{api.VerdictRuntimeError}, nil},
		{"read /etc/shadow", "bash", "cat /etc/shadow", []string{api.VerdictRuntimeError}, nil},
		{"read the master's data", "bash", fmt.Sprintf("ls %s && cat %s/admin-token", dataDir, dataDir), []string{api.VerdictRuntimeError}, nil},
		{"read init's environment", "bash", "cat /proc/1/environ | tr '\\0' '\\n' | grep -i token && echo LEAK", []string{api.VerdictRuntimeError, api.VerdictOK},
			func(t *testing.T, j *api.Job) {
				if strings.Contains(j.Run.Stdout, "LEAK") {
					t.Errorf("a token in /proc/1/environ: %q", j.Run.Stdout)
				}
			}},
		{"write outside the work dir", "bash", "echo x > /usr/pwned", []string{api.VerdictRuntimeError}, nil},
		{"kill everything", "bash", "kill -9 -1; echo survived", []string{api.VerdictRuntimeError, api.VerdictOK}, nil},
		{"ptrace", "python", "import ctypes\nlibc=ctypes.CDLL(None)\nr=libc.ptrace(16, 1, 0, 0)\nprint('ptrace', r)\nimport sys\nsys.exit(0 if r!=0 else 1)", []string{api.VerdictOK}, nil},
		{"mount", "bash", "mount -t tmpfs none /tmp", []string{api.VerdictRuntimeError}, nil},
		{"unshare", "bash", "unshare -r true", []string{api.VerdictRuntimeError}, nil},
		{"background child left behind", "bash", "(sleep 1000 &) ; echo done", []string{api.VerdictOK}, nil},
		{"setsid escape", "bash", "setsid sleep 1000 & echo done", []string{api.VerdictOK}, nil},
		{"plant a symlink to a host file", "bash", "ln -s /etc/shadow out.txt; ln -s / root; echo planted", []string{api.VerdictOK}, nil},
		// The work directory is on the worker's tmpfs, charged to the job's
		// memory cgroup: 100 MB of files do not fit in a 64 MB job.
		{"fill the work directory", "bash", "head -c 100000000 /dev/zero > big; echo wrote", []string{api.VerdictMemoryLimit},
			func(t *testing.T, j *api.Job) {
				if strings.Contains(j.Run.Stdout, "wrote") {
					t.Errorf("100 MB written past a 64 MB memory limit")
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			start := time.Now()
			j := clustertest.Must(t).Finished(c.Client.SubmitWait(ctx, &api.JobRequest{Language: tc.lang, Source: tc.src, Limits: small}, 2*time.Minute))
			if j.Status != api.StatusDone {
				t.Fatalf("status %q error %q", j.Status, j.Error)
			}
			clustertest.RunOf(t, j) // every case here compiles and runs
			ok := false
			for _, v := range tc.verdicts {
				ok = ok || j.Verdict == v
			}
			if !ok {
				t.Fatalf("verdict %q (exit %d %s, stdout %.200q, stderr %.300q), want one of %v",
					j.Verdict, j.Run.ExitCode, j.Run.Signal, j.Run.Stdout, j.Run.Stderr, tc.verdicts)
			}
			if strings.Contains(j.Run.Stdout, "connected") {
				t.Fatalf("the program reached the network: %q", j.Run.Stdout)
			}
			if tc.check != nil {
				tc.check(t, j)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("took %v", took)
			}
			// The worker is healthy: the next job runs normally.
			next := clustertest.Must(t).Finished(c.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo fine"}, time.Minute))
			if next.Verdict != api.VerdictOK || clustertest.RunOf(t, next).Stdout != "fine\n" {
				t.Fatalf("the next job after %q: %+v", tc.name, next)
			}
		})
	}
	// Nothing hostile was left on the host: the file is not written, and
	// the listener never saw a connection.
	if _, err := os.Stat("/usr/pwned"); err == nil {
		os.Remove("/usr/pwned")
		t.Fatal("a program wrote /usr/pwned on the host")
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Millisecond))
	if conn, err := ln.Accept(); err == nil {
		conn.Close()
		t.Fatal("a program connected to the host's loopback")
	}
}

// TestHostileProgramsOfIssue11 adds issue 11's attacks on the sandbox to
// the suite, through a real cluster: each ends with the right verdict,
// the worker stays up and its next job runs. (Its attack on the transport,
// many tests that each print megabytes, is TestHostileHugeResult.)
func TestHostileProgramsOfIssue11(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the sandbox needs root: these programs are only run inside it")
	}
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w", Slots: 2}}})
	if kind := clustertest.SharedToolbox(t).Sandbox; kind == "none" {
		t.Fatalf("running as root but the sandbox is %q", kind)
	}
	c.WaitLanguage("bash")
	c.WaitLanguage("c")
	workRoot := clustertest.WorkRoot(t)

	for _, tc := range []struct {
		name, src string // C
		limits    api.Limits
		check     func(t *testing.T, j *api.Job)
	}{
		// Socket families outside the allow-list (AF_UNIX, AF_INET,
		// AF_INET6) fail as on a kernel without them: AF_VSOCK is not
		// network-namespaced (a job held a port of the virtual
		// machine's vsock space), AF_NETLINK and AF_PACKET expose the
		// kernel's interfaces. The program goes on and says what it got.
		{"sockets of refused families", socketFamiliesProgram,
			api.Limits{CPUMs: 2000, WallMs: 4000, MemoryMB: 64, Processes: 32, OutputKB: 64},
			func(t *testing.T, j *api.Job) {
				for _, want := range []string{"AF_VSOCK errno 97", "AF_NETLINK errno 97", "AF_PACKET errno 97", "AF_INET ok"} {
					if !strings.Contains(j.Run.Stdout, want+"\n") {
						t.Errorf("want %q (97: EAFNOSUPPORT) in %q", want, j.Run.Stdout)
					}
				}
			}},
		// 100,000 files in the work directory (a compile doing this
		// filled the compile cache with 100,000 inodes): the job
		// finishes, and its files all go with it. Memory enough for
		// their inodes, which the tmpfs charges to the job.
		{"100,000 files in the work directory", manyFilesProgram,
			api.Limits{CPUMs: 10000, WallMs: 20000, MemoryMB: 512, Processes: 32, OutputKB: 64},
			func(t *testing.T, j *api.Job) {
				if j.Run.Stdout != "made 100000\n" {
					t.Fatalf("stdout %q stderr %.300q", j.Run.Stdout, j.Run.Stderr)
				}
				// The job's directory, found by the marker it wrote,
				// is gone a moment later.
				c.Eventually(20*time.Second, "the job's 100,000 files removed", func() bool {
					for _, pattern := range []string{"*/", "*/*/", "*/*/*/"} {
						if m, _ := filepath.Glob(filepath.Join(workRoot, pattern+manyFilesMarker)); len(m) > 0 {
							return false
						}
					}
					return true
				})
				if n, err := usedInodes(workRoot); err == nil && n > 10_000 {
					t.Errorf("%d inodes still used on the work directories' file system", n)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			j := clustertest.Must(t).Finished(c.Client.SubmitWait(ctx, &api.JobRequest{Language: "c", Source: tc.src, Limits: tc.limits}, 2*time.Minute))
			if j.Status != api.StatusDone || j.Verdict != api.VerdictOK {
				t.Fatalf("status %q verdict %q error %q", j.Status, j.Verdict, j.Error)
			}
			clustertest.RunOf(t, j)
			tc.check(t, j)
			if s := workerStatus(c, "w"); s != api.WorkerUp {
				t.Fatalf("worker %s after %q", s, tc.name)
			}
			next := clustertest.Must(t).Finished(c.Client.SubmitWait(ctx, &api.JobRequest{Language: "bash", Source: "echo fine"}, time.Minute))
			if next.Verdict != api.VerdictOK || clustertest.RunOf(t, next).Stdout != "fine\n" {
				t.Fatalf("the next job after %q: %+v", tc.name, next)
			}
		})
	}
}

// socketFamiliesProgram tries a socket of each family the sandbox refuses,
// with a type the family accepts, and one it allows.
const socketFamiliesProgram = `#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
static void try(const char *name, int family, int type) {
	int s = socket(family, type, 0);
	if (s >= 0) {
		printf("%s ok\n", name);
		close(s);
	} else {
		printf("%s errno %d\n", name, errno);
	}
}
int main(void) {
	try("AF_VSOCK", AF_VSOCK, SOCK_STREAM);
	try("AF_NETLINK", AF_NETLINK, SOCK_RAW);
	try("AF_PACKET", AF_PACKET, SOCK_DGRAM);
	try("AF_INET", AF_INET, SOCK_STREAM);
	return 0;
}
`

// manyFilesMarker names the file manyFilesProgram leaves beside its
// 100,000, for the test to find its work directory.
const manyFilesMarker = "grappe-hostile-many-files"

var manyFilesProgram = `#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
int main(void) {
	char name[32];
	int made = 0;
	close(open("` + manyFilesMarker + `", O_CREAT | O_WRONLY, 0600));
	for (int i = 0; i < 100000; i++) {
		snprintf(name, sizeof name, "f%d", i);
		int fd = open(name, O_CREAT | O_EXCL | O_WRONLY, 0600);
		if (fd < 0) {
			perror(name);
			break;
		}
		close(fd);
		made++;
	}
	printf("made %d\n", made);
	return 0;
}
`

// usedInodes is the number of inodes in use on dir's file system.
func usedInodes(dir string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return 0, err
	}
	return st.Files - st.Ffree, nil
}
