package worker

import (
	"strconv"
	"syscall"
)

// changeTime is a file's status change time (ctime), which no one can set.
func changeTime(st *syscall.Stat_t) string {
	return strconv.FormatInt(int64(st.Ctim.Sec), 10) + "." + strconv.FormatInt(int64(st.Ctim.Nsec), 10)
}
