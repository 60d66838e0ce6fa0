package worker

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/grappe/grappe/internal/lang"
)

// The self-test cache keeps, per toolchain, the proof that its self-test
// passed, so that a worker restarted on a machine whose toolchains have
// not changed announces them at once instead of compiling a hello world
// in each compiler again (seconds each on a small machine, and every
// worker the autoscaler starts paid them).
//
// An entry is bound to everything the verdict depends on (the key): the
// resolved binary (path, size, modification and change times, device and
// inode), the version it reported, the toolchain's directories, the
// catalogue entry (commands, environment, self-test), the sandbox kind and
// the grappe executable itself (its path, size and times: a new grappe
// may run programs differently). Any change to one of them gives another
// key, and the entry no longer counts. Entries also expire (MaxAge).
//
// Trust: an entry only makes the worker announce a language it would
// otherwise test first; it carries no command and no path that is used.
// A forged entry could at worst announce a toolchain that does not work
// (its jobs would then fail as infrastructure failures, and the worker
// repair itself, which withdraws it). Still, an entry is only read from a
// directory that is the worker user's own and closed to everyone else
// (0700), from a regular file (no symbolic link followed) owned by that
// user and readable by no one else (0600); anything else is ignored and
// logged. Entries are written whole (a temporary file renamed over the
// old one), so workers of one machine may share the directory: the last
// one to test a toolchain wins, and a reader sees a whole entry or none.

// testCacheFormat changes whenever the meaning of an entry does.
const testCacheFormat = 1

// DefaultTestCacheMaxAge is how long a passed self-test is trusted without
// being run again.
const DefaultTestCacheMaxAge = 24 * time.Hour

// maxRecordBytes bounds what is read of an entry.
const maxRecordBytes = 64 << 10

// ErrUnsafeCache is logged when the cache directory or an entry could have
// been written by another user; it is then ignored.
var ErrUnsafeCache = errors.New("worker: self-test cache not private to this user")

// testRecord is one cache entry: a passed self-test.
type testRecord struct {
	Format   int       `json:"format"`
	Key      string    `json:"key"`
	Language string    `json:"language"`
	Version  string    `json:"version"`
	Bin      string    `json:"bin"`
	TestedAt time.Time `json:"tested_at"`
	// TookMS is how long the self-test took: the next start orders the
	// self-tests it must run by it, cheapest first.
	TookMS int64 `json:"took_ms"`
}

// testCache is the self-test cache in one directory.
type testCache struct {
	dir    string
	salt   string // the sandbox kind and the grappe executable
	maxAge time.Duration
	now    func() time.Time
	log    *slog.Logger
	// off is set when the directory is not safe: nothing is read or
	// written.
	off bool
}

// openTestCache prepares the cache in dir, creating it private to this
// user. A directory others could write is refused: the cache is then off
// (every self-test runs), which is logged.
func openTestCache(dir, sandboxKind string, maxAge time.Duration, log *slog.Logger) *testCache {
	c := &testCache{dir: dir, maxAge: maxAge, now: time.Now, log: log}
	if c.maxAge <= 0 {
		c.maxAge = DefaultTestCacheMaxAge
	}
	c.salt = "sandbox=" + sandboxKind + "\x00grappe=" + executableStamp()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		log.Warn("self-test cache unusable; every self-test runs", "dir", dir, "err", err)
		c.off = true
		return c
	}
	fi, err := os.Lstat(dir)
	if err == nil {
		err = checkPrivate(fi, true)
	}
	if err != nil {
		log.Warn("self-test cache ignored; every self-test runs", "dir", dir, "err", err)
		c.off = true
	}
	return c
}

// executableStamp identifies the running grappe binary.
func executableStamp() string {
	exe, err := os.Executable()
	if err != nil {
		return "unknown"
	}
	fi, err := os.Stat(exe)
	if err != nil {
		return "unknown"
	}
	return exe + "\x00" + fileStamp(fi)
}

// fileStamp is what identifies a file's content without reading it: size,
// times, device and inode.
func fileStamp(fi fs.FileInfo) string {
	return strconv.FormatInt(fi.Size(), 10) + "\x00" + strconv.FormatInt(fi.ModTime().UnixNano(), 10) +
		"\x00" + fi.Mode().String() + "\x00" + statIdentity(fi)
}

// key is what a toolchain's verdict depends on; "" when the binary cannot
// be examined (nothing is then cached).
func (c *testCache) key(t lang.Toolchain) string {
	fi, err := os.Stat(t.Bin)
	if err != nil {
		return ""
	}
	entry, err := json.Marshal(t.Entry)
	if err != nil {
		return ""
	}
	h := sha256.New()
	for _, s := range []string{strconv.Itoa(testCacheFormat), c.salt, t.Name(), t.Bin, fileStamp(fi), t.Version, string(entry)} {
		writeString(h, s)
	}
	for _, d := range t.Dirs {
		writeString(h, d)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeString(w io.Writer, s string) {
	fmt.Fprintf(w, "%d:%s", len(s), s)
}

func (c *testCache) path(language string) string {
	return filepath.Join(c.dir, language+".json")
}

// lookup returns the toolchain's entry if it is safe, whole, current and
// its key matches (ok), and else any readable entry of the language, for
// its cost only.
func (c *testCache) lookup(t lang.Toolchain) (rec testRecord, ok bool) {
	if c.off {
		return testRecord{}, false
	}
	rec, err := c.read(t.Name())
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("self-test cache entry ignored", "language", t.Name(), "err", err)
		}
		return testRecord{}, false
	}
	age := c.now().Sub(rec.TestedAt)
	ok = rec.Format == testCacheFormat && rec.Language == t.Name() && rec.Key != "" &&
		rec.Key == c.key(t) && age >= -time.Minute && age < c.maxAge
	return rec, ok
}

// read reads an entry, refusing one that is not private to this user.
func (c *testCache) read(language string) (testRecord, error) {
	f, err := openNoFollow(c.path(language))
	if err != nil {
		return testRecord{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return testRecord{}, err
	}
	if err := checkPrivate(fi, false); err != nil {
		return testRecord{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxRecordBytes+1))
	if err != nil {
		return testRecord{}, err
	}
	if len(b) > maxRecordBytes {
		return testRecord{}, errors.New("entry too large")
	}
	var rec testRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return testRecord{}, fmt.Errorf("unreadable entry: %w", err)
	}
	return rec, nil
}

// store records a passed self-test.
func (c *testCache) store(t lang.Toolchain, took time.Duration) error {
	if c.off {
		return nil
	}
	k := c.key(t)
	if k == "" {
		return nil
	}
	b, err := json.Marshal(testRecord{
		Format: testCacheFormat, Key: k, Language: t.Name(), Version: t.Version, Bin: t.Bin,
		TestedAt: c.now().UTC(), TookMS: took.Milliseconds(),
	})
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(c.dir, "."+t.Name()+"-*") // mode 0600
	if err != nil {
		return fmt.Errorf("worker: self-test cache: %w", err)
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("worker: self-test cache: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("worker: self-test cache: %w", err)
	}
	if err := os.Rename(f.Name(), c.path(t.Name())); err != nil {
		return fmt.Errorf("worker: self-test cache: %w", err)
	}
	return nil
}

// forget removes a toolchain's entry: its self-test failed.
func (c *testCache) forget(language string) {
	if c.off {
		return
	}
	if err := os.Remove(c.path(language)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		c.log.Warn("self-test cache: remove entry", "language", language, "err", err)
	}
}
