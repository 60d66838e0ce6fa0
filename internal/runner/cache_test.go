package runner

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// putBytes stores an entry of one artifact of n bytes.
func putBytes(t *testing.T, c *cache, key string, n int) {
	t.Helper()
	meta := &cacheMeta{Files: []artifact{{Name: "main", Mode: 0o755, Size: int64(n)}}}
	err := c.put(key, meta, func(name, dst string, a artifact) (int64, error) {
		return int64(n), os.WriteFile(dst, bytes.Repeat([]byte{'x'}, n), a.Mode)
	})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func has(c *cache, key string) bool {
	meta, release, ok := c.get(key)
	if ok {
		release()
		_ = meta
	}
	return ok
}

func TestCacheEviction(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	// Each entry counts its 1000 bytes plus 512 of overhead: three fit.
	c, err := openCache(dir, 3*1512+100, DefaultCacheMaxFiles, log)
	if err != nil {
		t.Fatal(err)
	}
	putBytes(t, c, "a", 1000)
	putBytes(t, c, "b", 1000)
	putBytes(t, c, "c", 1000)
	if n, size := c.usage(); n != 3 || size != 3*1512 {
		t.Fatalf("usage %d entries %d bytes", n, size)
	}
	time.Sleep(10 * time.Millisecond)
	if !has(c, "a") { // a is now the most recently used
		t.Fatal("a missing")
	}
	putBytes(t, c, "d", 1000) // evicts b, the least recently used
	if has(c, "b") || !has(c, "a") || !has(c, "c") || !has(c, "d") {
		t.Errorf("after eviction: a %v b %v c %v d %v", has(c, "a"), has(c, "b"), has(c, "c"), has(c, "d"))
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); !os.IsNotExist(err) {
		t.Errorf("b still on disk: %v", err)
	}

	// A pinned entry is not evicted under its reader.
	_, release, ok := c.get("c")
	if !ok {
		t.Fatal("c missing")
	}
	for _, k := range []string{"e", "f", "g"} {
		putBytes(t, c, k, 1000)
	}
	if !has(c, "c") {
		t.Error("pinned entry evicted")
	}
	release()

	// Too big for the whole cache: not stored.
	putBytes(t, c, "huge", 10000)
	if has(c, "huge") {
		t.Error("entry larger than the cache stored")
	}

	// A restart finds the entries, and the artifact contents.
	n, size := c.usage()
	c2, err := openCache(dir, 3*1512+100, DefaultCacheMaxFiles, log)
	if err != nil {
		t.Fatal(err)
	}
	if n2, size2 := c2.usage(); n2 != n || size2 != size {
		t.Errorf("reopened: %d entries %d bytes, was %d %d", n2, size2, n, size)
	}
	if data, err := os.ReadFile(c2.file("c", "main")); err != nil || len(data) != 1000 {
		t.Errorf("artifact: %d bytes, %v", len(data), err)
	}
	// And a smaller limit evicts down to it at once.
	c3, err := openCache(dir, 1600, DefaultCacheMaxFiles, log)
	if err != nil {
		t.Fatal(err)
	}
	if n3, _ := c3.usage(); n3 != 1 {
		t.Errorf("%d entries under a one-entry limit", n3)
	}
}

func TestCacheCorruptEntryDropped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "broken"), 0o700)
	os.WriteFile(filepath.Join(dir, "broken", "meta.json"), []byte("{not json"), 0o600)
	os.MkdirAll(filepath.Join(dir, ".tmp", "put-123"), 0o700)
	c, err := openCache(dir, 1<<20, DefaultCacheMaxFiles, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := c.usage(); n != 0 {
		t.Errorf("%d entries", n)
	}
	for _, p := range []string{"broken", ".tmp/put-123"} {
		if _, err := os.Stat(filepath.Join(dir, p)); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
}

func TestCacheConcurrentPut(t *testing.T) {
	t.Parallel()
	c, err := openCache(t.TempDir(), 1<<20, DefaultCacheMaxFiles, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { putBytes(t, c, "same", 1000) })
	}
	wg.Wait()
	if n, size := c.usage(); n != 1 || size != 1512 {
		t.Errorf("%d entries %d bytes", n, size)
	}
	if data, err := os.ReadFile(c.file("same", "main")); err != nil || len(data) != 1000 {
		t.Errorf("artifact: %d bytes, %v", len(data), err)
	}
}
