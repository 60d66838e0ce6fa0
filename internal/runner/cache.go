package runner

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// cache is the content-addressed compile cache: what a successful compile
// produced, keyed by everything that decides it (see job.cacheKey).
//
// On disk, under dir:
//
//	<key>/meta.json   the artifact list and the compiler's output
//	<key>/files/…     the artifacts
//	.tmp/             entries being written, or evicted and being deleted
//
// An entry appears by renaming a complete directory from .tmp, so a reader
// never sees half of one. An entry holds only the language's declared
// artifacts (lang.Entry.Artifacts), at most maxEntryFiles of them, and is
// bounded in bytes too: a compile that makes 100,000 files costs the cache
// nothing. Least recently used entries are evicted when the total size
// passes max or the total number of files (inodes) passes maxFiles;
// entries being copied out are pinned and never evicted under a reader.
// The last use is the directory's mtime, so the order survives a restart.
type cache struct {
	dir      string
	max      int64
	maxFiles int64
	log      *slog.Logger

	mu         sync.Mutex
	entries    map[string]*cacheEntry
	total      int64
	totalFiles int64
	flights    map[string]chan struct{}
}

// Per-entry caps: an entry over either is not stored.
const (
	maxEntryFiles = 1000
	maxEntryBytes = 256 << 20
)

type cacheEntry struct {
	size    int64
	files   int64 // inodes on disk
	lastUse time.Time
	pins    int
	// meta is read from disk on the first hit and kept when small (a hit
	// should cost no file read); it is never modified once set.
	meta *cacheMeta
	// touched is when the entry's directory time was last set: the order
	// of eviction after a restart needs minutes, not every hit.
	touched time.Time
}

// metaKeepMax bounds the metadata (mostly compiler output) kept in memory
// per entry.
const metaKeepMax = 16 << 10

type cacheMeta struct {
	Files  []artifact `json:"files"`
	Stdout []byte     `json:"stdout,omitempty"`
	Stderr []byte     `json:"stderr,omitempty"`
}

// openCache opens the cache in dir, bounded to max bytes and maxFiles
// files in all.
func openCache(dir string, max, maxFiles int64, log *slog.Logger) (*cache, error) {
	c := &cache{
		dir:      dir,
		max:      max,
		maxFiles: maxFiles,
		log:      log,
		entries:  make(map[string]*cacheEntry),
		flights:  make(map[string]chan struct{}),
	}
	// Leftovers of a crash: half-written or half-deleted entries.
	if err := os.RemoveAll(c.tmp()); err != nil {
		return nil, fmt.Errorf("runner: cache: %w", err)
	}
	if err := os.MkdirAll(c.tmp(), 0o700); err != nil {
		return nil, fmt.Errorf("runner: cache: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("runner: cache: %w", err)
	}
	for _, de := range des {
		key := de.Name()
		if key == ".tmp" {
			continue
		}
		meta, err := c.readMeta(key)
		info, serr := de.Info()
		if err != nil || serr != nil || !de.IsDir() {
			log.Warn("compile cache: dropping unreadable entry", "key", key, "err", errors.Join(err, serr))
			os.RemoveAll(filepath.Join(dir, key))
			continue
		}
		e := &cacheEntry{size: meta.size(), files: meta.inodes(), lastUse: info.ModTime()}
		c.entries[key] = e
		c.total += e.size
		c.totalFiles += e.files
	}
	c.mu.Lock()
	victims := c.evictLocked()
	c.mu.Unlock()
	c.remove(victims)
	return c, nil
}

func (c *cache) tmp() string { return filepath.Join(c.dir, ".tmp") }

// file is where an entry keeps one artifact.
func (c *cache) file(key, name string) string {
	return filepath.Join(c.dir, key, "files", filepath.FromSlash(name))
}

func (c *cache) readMeta(key string) (*cacheMeta, error) {
	data, err := os.ReadFile(filepath.Join(c.dir, key, "meta.json"))
	if err != nil {
		return nil, err
	}
	var m cacheMeta
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	if len(m.Files) > maxEntryFiles {
		return nil, fmt.Errorf("%d files, over %d", len(m.Files), maxEntryFiles)
	}
	for _, a := range m.Files {
		if err := checkName(a.Name); err != nil {
			return nil, err
		}
	}
	return &m, nil
}

// inodes is what an entry takes of the disk's inodes: its directory, the
// metadata, the files directory, and each artifact with a directory of its
// own at most.
func (m *cacheMeta) inodes() int64 {
	return 3 + 2*int64(len(m.Files))
}

// fits reports whether an entry may be stored at all.
func (c *cache) fits(m *cacheMeta) bool {
	return len(m.Files) <= maxEntryFiles && m.size() <= min(c.max, maxEntryBytes) && m.inodes() <= c.maxFiles
}

// size is what an entry counts for: its artifacts and compiler output.
func (m *cacheMeta) size() int64 {
	n := int64(len(m.Stdout) + len(m.Stderr) + 512)
	for _, a := range m.Files {
		n += a.Size
	}
	return n
}

// get looks key up. On a hit the entry is pinned until release is called.
func (c *cache) get(key string) (meta *cacheMeta, release func(), ok bool) {
	c.mu.Lock()
	e := c.entries[key]
	if e == nil {
		c.mu.Unlock()
		return nil, nil, false
	}
	e.pins++
	now := time.Now()
	e.lastUse = now
	touch := now.Sub(e.touched) > time.Minute
	if touch {
		e.touched = now
	}
	meta = e.meta
	c.mu.Unlock()
	release = func() {
		c.mu.Lock()
		e.pins--
		c.mu.Unlock()
	}
	if touch {
		os.Chtimes(filepath.Join(c.dir, key), now, now)
	}
	if meta != nil {
		return meta, release, true
	}
	meta, err := c.readMeta(key)
	if err != nil {
		release()
		c.log.Warn("compile cache: unreadable entry", "key", key, "err", err)
		c.drop(key)
		return nil, nil, false
	}
	if len(meta.Stdout)+len(meta.Stderr) <= metaKeepMax {
		c.mu.Lock()
		e.meta = meta
		c.mu.Unlock()
	}
	return meta, release, true
}

// put stores the artifacts by copying them out of copyOut(name, dst),
// unless the entry exists already or would be larger than the whole cache.
func (c *cache) put(key string, meta *cacheMeta, copyOut func(name, dst string, a artifact) (int64, error)) error {
	if !c.fits(meta) {
		return nil
	}
	c.mu.Lock()
	_, exists := c.entries[key]
	c.mu.Unlock()
	if exists {
		return nil
	}
	tmp, err := os.MkdirTemp(c.tmp(), "put-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for i, a := range meta.Files {
		dst := filepath.Join(tmp, "files", filepath.FromSlash(a.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		n, err := copyOut(a.Name, dst, a)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Name, err)
		}
		meta.Files[i].Size = n // what was copied, whatever the listing said
	}
	if !c.fits(meta) {
		return nil
	}
	data, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), data, 0o600); err != nil {
		return err
	}

	c.mu.Lock()
	if _, exists := c.entries[key]; exists {
		c.mu.Unlock()
		return nil
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, key)); err != nil {
		c.mu.Unlock()
		return err
	}
	e := &cacheEntry{size: meta.size(), files: meta.inodes(), lastUse: time.Now()}
	c.entries[key] = e
	c.total += e.size
	c.totalFiles += e.files
	victims := c.evictLocked()
	c.mu.Unlock()
	c.remove(victims)
	return nil
}

// evictLocked takes least recently used unpinned entries out of the index
// until the totals (bytes and files) fit, and moves their directories
// aside; the caller deletes them (slow) after unlocking.
func (c *cache) evictLocked() []string {
	var victims []string
	for c.total > c.max || c.totalFiles > c.maxFiles {
		var oldest string
		for k, e := range c.entries {
			if e.pins == 0 && (oldest == "" || e.lastUse.Before(c.entries[oldest].lastUse)) {
				oldest = k
			}
		}
		if oldest == "" {
			break // everything left is in use
		}
		if v := c.detachLocked(oldest); v != "" {
			victims = append(victims, v)
		}
		c.log.Debug("compile cache: evicted", "key", oldest)
	}
	return victims
}

// detachLocked removes key from the index and renames its directory into
// .tmp, returning the new path ("" if it could not be moved).
func (c *cache) detachLocked(key string) string {
	e := c.entries[key]
	delete(c.entries, key)
	c.total -= e.size
	c.totalFiles -= e.files
	dst := filepath.Join(c.tmp(), "evict-"+key+"-"+randomHex())
	if err := os.Rename(filepath.Join(c.dir, key), dst); err != nil {
		c.log.Warn("compile cache: cannot evict", "key", key, "err", err)
		return ""
	}
	return dst
}

func (c *cache) drop(key string) {
	c.mu.Lock()
	var v string
	if e := c.entries[key]; e != nil && e.pins == 0 {
		v = c.detachLocked(key)
	}
	c.mu.Unlock()
	c.remove([]string{v})
}

func (c *cache) remove(dirs []string) {
	for _, d := range dirs {
		if d != "" {
			os.RemoveAll(d)
		}
	}
}

// join makes the caller the one compiling key (leader), or returns a
// channel closed when the current leader is done. Identical jobs arriving
// together thus compile once.
func (c *cache) join(key string) (leader bool, wait <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.flights[key]; ok {
		return false, ch
	}
	c.flights[key] = make(chan struct{})
	return true, nil
}

func (c *cache) leave(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.flights[key])
	delete(c.flights, key)
}

// usage reports the entry count and total size, for tests and metrics.
func (c *cache) usage() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.total
}

// files reports the inodes the entries take.
func (c *cache) files() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.totalFiles
}

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
