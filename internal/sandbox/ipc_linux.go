//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// cleanIPC removes every System V IPC object and POSIX message queue of
// the sandbox's IPC namespace, so a command finds none left by the
// previous one. (Making a new namespace per command would take up to
// hundreds of microseconds, and only the forking thread could.)
func cleanIPC() error {
	if n, err := sysvCount(); err != nil || n > 0 {
		if err := cleanSysV(); err != nil {
			return err
		}
	}
	entries, err := os.ReadDir("/dev/mqueue")
	if err != nil {
		return fmt.Errorf("clean message queues: %w", err)
	}
	for _, e := range entries {
		if err := unix.Unlink("/dev/mqueue/" + e.Name()); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("remove message queue: %w", err)
		}
	}
	return nil
}

// sysvCount counts the System V objects of the namespace with the cheap
// *_INFO commands, so that /proc/sysvipc is read only when there is
// something to remove.
func sysvCount() (int, error) {
	const (
		shmInfo = 14 // SHM_INFO: struct shm_info, used_ids at 0
		semInfo = 19 // SEM_INFO: struct seminfo, semusz (sets) at 28
		msgInfo = 12 // MSG_INFO: struct msginfo, msgpool (queues) at 0
	)
	n := 0
	for _, q := range []struct {
		nr, cmd uintptr
		off     int
	}{{unix.SYS_SHMCTL, shmInfo, 0}, {unix.SYS_SEMCTL, semInfo, 28}, {unix.SYS_MSGCTL, msgInfo, 0}} {
		var buf [128]byte
		p := uintptr(unsafe.Pointer(&buf[0]))
		var errno unix.Errno
		if q.nr == unix.SYS_SEMCTL {
			_, _, errno = unix.Syscall6(q.nr, 0, 0, q.cmd, p, 0, 0)
		} else {
			_, _, errno = unix.Syscall(q.nr, 0, q.cmd, p)
		}
		if errno != 0 {
			return 0, errno
		}
		n += int(*(*int32)(unsafe.Pointer(&buf[q.off])))
	}
	return n, nil
}

// cleanSysV removes every System V IPC object of the namespace.
func cleanSysV() error {
	for _, kind := range []struct {
		file string
		rm   func(id int) error
	}{
		{"/proc/sysvipc/shm", func(id int) error { _, err := unix.SysvShmCtl(id, unix.IPC_RMID, nil); return err }},
		{"/proc/sysvipc/sem", func(id int) error { return ipcRm(unix.SYS_SEMCTL, id) }},
		{"/proc/sysvipc/msg", func(id int) error { return ipcRm(unix.SYS_MSGCTL, id) }},
	} {
		ids, err := sysvIDs(kind.file)
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := kind.rm(id); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EIDRM) {
				return fmt.Errorf("remove IPC object %d: %w", id, err)
			}
		}
	}
	return nil
}

// ipcRm is semctl/msgctl(id, IPC_RMID).
func ipcRm(nr uintptr, id int) error {
	if _, _, errno := unix.Syscall(nr, uintptr(id), 0, unix.IPC_RMID); errno != 0 {
		return errno
	}
	return nil
}

// sysvIDs lists the ids in a /proc/sysvipc file (second column, after a
// header line).
func sysvIDs(file string) ([]int, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("clean IPC: %w", err)
	}
	var ids []int
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Scan() // header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		if id, err := strconv.Atoi(f[1]); err == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
