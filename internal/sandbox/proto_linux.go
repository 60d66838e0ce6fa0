//go:build linux

package sandbox

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"
)

// The worker talks to each sandbox's init over a SOCK_SEQPACKET socket
// pair (the init's end is its fd 3): one message per packet, with
// descriptors passed alongside as SCM_RIGHTS. The worker sends a setupMsg
// (JSON, once), the init answers Ready; then, per command, a runMsg
// answered by one replyMsg once every process of the command is gone.
// Those two are on every command's path and use a compact binary form.

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
	// CloneIntoCgroup: commands are cloned straight into their (v2)
	// cgroup, so the init's seccomp filter must let clone3 through.
	CloneIntoCgroup bool
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
	Ready bool
	Err   string
	// Exec marks Err as the program's own failure to start (no such file,
	// not executable, arguments too long), with its Errno.
	Exec  bool
	Errno int
	// Fatal: the init is exiting; the sandbox cannot be reused.
	Fatal    bool
	Status   int   // wait status of the command's main process
	MaxRSSKB int64 // largest resident size of a reaped process
}

// sendMsgFD sends one packet with fds over the raw socket fd (init side).
func sendMsgFD(fd int, b []byte, fds []int) error {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		err := unix.Sendmsg(fd, b, oob, nil, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

// errEOF is returned by recvMsgFD when the worker closed its end.
var errEOF = errors.New("control socket closed")

// recvMsgFD receives one packet over the raw socket fd (init side), with
// the descriptors that came with it (close-on-exec).
func recvMsgFD(fd int, buf []byte) ([]byte, []int, error) {
	if err := waitReadable(fd); err != nil {
		return nil, nil, err
	}
	var n int
	var err error
	for {
		// MSG_TRUNC with MSG_PEEK returns the packet's real length.
		n, _, _, _, err = unix.Recvmsg(fd, buf[:1], nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if n == 0 {
		return nil, nil, errEOF
	}
	if n > len(buf) {
		buf = make([]byte, n)
	}
	oob := make([]byte, unix.CmsgSpace(maxFDs*4))
	var oobn int
	for {
		n, oobn, _, _, err = unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	fds, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, nil, err
	}
	return buf[:n], fds, nil
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

// The binary form: unsigned varints, signed varints for what may be
// negative, strings and lists length-prefixed.

var errMalformed = errors.New("malformed message")

type encoder struct{ b []byte }

func (e *encoder) uint(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) int(v int64)   { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) str(s string)  { e.uint(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bool(v bool) {
	if v {
		e.uint(1)
	} else {
		e.uint(0)
	}
}
func (e *encoder) strs(l []string) {
	e.uint(uint64(len(l)))
	for _, s := range l {
		e.str(s)
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uint() uint64 { return varint(d, binary.Uvarint) }

func (d *decoder) int() int64 { return varint(d, binary.Varint) }

// varint reads one varint with read (binary.Uvarint or binary.Varint); a
// malformed one poisons the decoder.
func varint[T uint64 | int64](d *decoder, read func([]byte) (T, int)) T {
	v, n := read(d.b)
	if n <= 0 {
		d.err = errMalformed
		d.b = nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bool() bool { return d.uint() != 0 }

// count reads a list length, refusing more elements than bytes left.
func (d *decoder) count() int {
	n := d.uint()
	if n > uint64(len(d.b)) {
		d.err = errMalformed
		d.b = nil
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.count()
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strs() []string {
	n := d.count()
	l := make([]string, n)
	for i := range l {
		l[i] = d.str()
	}
	return l
}

func (m *runMsg) marshal() []byte {
	e := &encoder{b: make([]byte, 0, 256)}
	e.str(m.Path)
	e.strs(m.Args)
	e.strs(m.Env)
	e.str(m.Dir)
	e.int(int64(m.UID))
	e.int(int64(m.GID))
	e.int(int64(m.Umask))
	e.uint(uint64(len(m.Rlimits)))
	for _, r := range m.Rlimits {
		e.int(int64(r.Resource))
		e.uint(r.Cur)
		e.uint(r.Max)
	}
	e.uint(uint64(len(m.Mounts)))
	for _, mnt := range m.Mounts {
		e.str(mnt.Target)
		e.bool(mnt.Writable)
	}
	e.bool(m.CgroupDir)
	e.int(int64(m.CgroupFiles))
	return e.b
}

func (m *runMsg) unmarshal(b []byte) error {
	d := &decoder{b: b}
	m.Path = d.str()
	m.Args = d.strs()
	m.Env = d.strs()
	m.Dir = d.str()
	m.UID = int(d.int())
	m.GID = int(d.int())
	m.Umask = int(d.int())
	m.Rlimits = make([]rlimitSpec, d.count())
	for i := range m.Rlimits {
		m.Rlimits[i] = rlimitSpec{Resource: int(d.int()), Cur: d.uint(), Max: d.uint()}
	}
	m.Mounts = make([]mountSpec, d.count())
	for i := range m.Mounts {
		m.Mounts[i] = mountSpec{Target: d.str(), Writable: d.bool()}
	}
	m.CgroupDir = d.bool()
	m.CgroupFiles = int(d.int())
	if d.err == nil && len(d.b) != 0 {
		d.err = errMalformed
	}
	return d.err
}

func (m *replyMsg) marshal() []byte {
	e := &encoder{b: make([]byte, 0, 32+len(m.Err))}
	e.bool(m.Ready)
	e.str(m.Err)
	e.bool(m.Exec)
	e.int(int64(m.Errno))
	e.bool(m.Fatal)
	e.int(int64(m.Status))
	e.int(m.MaxRSSKB)
	return e.b
}

func (m *replyMsg) unmarshal(b []byte) error {
	d := &decoder{b: b}
	m.Ready = d.bool()
	m.Err = d.str()
	m.Exec = d.bool()
	m.Errno = int(d.int())
	m.Fatal = d.bool()
	m.Status = int(d.int())
	m.MaxRSSKB = d.int()
	if d.err == nil && len(d.b) != 0 {
		d.err = errMalformed
	}
	return d.err
}
