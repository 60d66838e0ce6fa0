//go:build linux

package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The worker talks to each sandbox's init over a SOCK_SEQPACKET socket
// pair (the init's end is its fd 3): one JSON message per packet, with
// descriptors passed alongside as SCM_RIGHTS. The worker sends a setupMsg,
// the init answers Ready; then, per command, a runMsg answered by one
// replyMsg when every process of the command is gone.

// initArg0 is the argv[0] under which the binary runs as a sandbox init.
const initArg0 = "grappe-sandbox-init"

// initCtlFD is the init's end of the control socket.
const initCtlFD = 3

// maxMsg bounds a message; the socket buffers are sized for it.
const maxMsg = 8 << 20

// maxFDs bounds the descriptors passed with one message.
const maxFDs = 64

// setupMsg builds a sandbox's root file system.
type setupMsg struct {
	// Stage is an empty directory of the host where the root is built.
	Stage    string
	Hostname string
	Root     []rootEntry
	Files    []genFile
	// TmpBytes and TmpInodes size each command's /tmp.
	TmpBytes, TmpInodes int64
	// Binds are mounted from host paths before the root is sealed: for
	// kernels without open_tree(2), where a sandbox serves one command and
	// knows its directories from the start.
	Binds []bindSpec
}

// rootEntry is one read-only path of the host shown at the same place.
type rootEntry struct {
	Path   string
	Kind   string // "dir", "file" or "link"
	Target string // of a link
}

// genFile is a file the sandbox makes up (/etc/passwd, …).
type genFile struct {
	Path string
	Data []byte
}

// bindSpec is a host path bound into the sandbox by path (see Binds).
type bindSpec struct {
	Source, Target string
	Writable       bool
}

// mountSpec is a detached mount (an open_tree descriptor) to attach at
// Target for one command.
type mountSpec struct {
	Target   string
	Writable bool
}

// rlimitSpec is one resource limit of the command.
type rlimitSpec struct {
	Resource int
	Cur, Max uint64
}

// runMsg runs one command. Its descriptors are, in order: stdin, stdout,
// stderr, one per Mounts entry, the cgroup directory if CgroupDir, then
// CgroupFiles files to write "0" into.
type runMsg struct {
	Path        string // the program as the sandbox sees it
	Args, Env   []string
	Dir         string
	UID, GID    int
	Umask       int
	Rlimits     []rlimitSpec
	Mounts      []mountSpec
	CgroupDir   bool
	CgroupFiles int
}

// replyMsg answers a setupMsg (Ready or Err) or a runMsg (Status, or Err).
type replyMsg struct {
	Ready bool   `json:",omitempty"`
	Err   string `json:",omitempty"`
	// Exec marks Err as the program's own failure to start (no such file,
	// not executable, arguments too long), with its Errno.
	Exec  bool `json:",omitempty"`
	Errno int  `json:",omitempty"`
	// Fatal: the init is exiting; the sandbox cannot be reused.
	Fatal    bool  `json:",omitempty"`
	Status   int   `json:",omitempty"` // wait status of the command's main process
	MaxRSSKB int64 `json:",omitempty"` // largest resident size of a reaped process
	T []int64
}

// sendMsgFD sends v with fds over the raw socket fd (init side).
func sendMsgFD(fd int, v any, fds []int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		err = unix.Sendmsg(fd, b, oob, nil, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

// errEOF is returned by recvMsgFD when the worker closed its end.
var errEOF = errors.New("control socket closed")

// recvMsgFD receives one message into v over the raw socket fd (init
// side), with the descriptors that came with it (close-on-exec).
func recvMsgFD(fd int, v any) ([]int, error) {
	var n int
	var err error
	for {
		// MSG_TRUNC with MSG_PEEK returns the packet's real length.
		n, _, _, _, err = unix.Recvmsg(fd, make([]byte, 1), nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errEOF
	}
	buf := make([]byte, n)
	oob := make([]byte, unix.CmsgSpace(maxFDs*4))
	var oobn int
	for {
		n, oobn, _, _, err = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(buf[:n], v); err != nil {
		closeFDs(fds)
		return nil, fmt.Errorf("decode message: %w", err)
	}
	return fds, nil
}

// parseRights extracts the descriptors of SCM_RIGHTS messages.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, err
	}
	var fds []int
	for i := range msgs {
		r, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			closeFDs(fds)
			return nil, err
		}
		fds = append(fds, r...)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}
