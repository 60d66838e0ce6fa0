package runner

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"

	"github.com/grappe/grappe/internal/lang"
	"github.com/grappe/grappe/internal/sandbox"
)

// compile runs the compile step, or takes its artifacts from the cache.
// ok is false for a compile error (which is not cached: a retry may find a
// fixed toolchain, and errors are cheap to reproduce).
func (j *job) compile(ctx context.Context) (res *Compile, ok bool, err error) {
	c := j.r.cache
	if j.selfTest {
		c = nil
	}
	var key string
	if c != nil {
		key = j.cacheKey()
		if res, ok := j.fromCache(key); ok {
			return res, true, nil
		}
		leader, wait := c.join(key)
		if leader {
			defer c.leave(key)
		} else {
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, false, ctx.Err()
			}
			if res, ok := j.fromCache(key); ok {
				return res, true, nil
			}
			// The leader failed or was cancelled: compile here.
		}
	}

	v := j.vars
	v.MemoryMB = memoryMB(j.r.compile)
	var layers []sandbox.Layer
	if j.entry.UsesCache() {
		layer, err := j.toolCache()
		if err != nil {
			return nil, false, err
		}
		v.Cache = layer.Seed
		layers = []sandbox.Layer{*layer}
	}
	argv := lang.Expand(j.entry.Compile, &v)
	o, err := j.r.cfg.Sandbox.Exec(ctx, &sandbox.Cmd{
		Args:   j.absProgram(argv),
		Env:    environ(&v, baseEnv(), j.entry.Env, j.entry.CompileEnv),
		Dir:    j.work,
		Limits: j.r.compile.sandbox(),
		Budget: j.budget,
		// The toolchain's own directories (a JDK, a rustup toolchain under
		// /root), and its cache (Go's GOCACHE) under a layer of the job's.
		ReadOnlyPaths: j.tc.Dirs,
		Layers:        layers,
	})
	if err != nil {
		return nil, false, fmt.Errorf("runner: compile %s: %w", j.entry.Name, err)
	}
	res = &Compile{ExitCode: o.ExitCode, Stdout: o.Stdout, Stderr: o.Stderr, Wall: o.Wall}
	if why := compileFailure(o); why != "" {
		// Say why the compiler stopped when it could not say it itself.
		if o.TimeLimit || o.MemoryLimit || o.OutputTruncated {
			res.Stderr = append(res.Stderr, "\ngrappe: "+why+"\n"...)
		}
		if res.ExitCode == 0 {
			res.ExitCode = 1
		}
		return res, false, nil
	}
	j.r.log.Debug("compiled", "language", j.entry.Name, "wall", o.Wall)
	if j.selfTest && len(layers) > 0 {
		if err := j.r.fillSeed(j.entry, j.tc, layers[0].Upper); err != nil {
			j.r.log.Warn("toolchain cache: cannot fill the seed", "language", j.entry.Name, "err", err)
		}
	}
	if c != nil {
		if err := j.store(key, res); err != nil {
			j.r.log.Warn("compile cache: cannot store", "language", j.entry.Name, "err", err)
		}
	}
	return res, true, nil
}

// compileFailure says why a compile failed, or "" when it succeeded.
func compileFailure(o *sandbox.Outcome) string {
	switch {
	case o.TimeLimit:
		return "compilation exceeded the time limit"
	case o.MemoryLimit:
		return "compilation exceeded the memory limit"
	case o.OutputTruncated:
		return "compiler output exceeded the limit"
	case o.Signal != "":
		return "compiler killed by " + o.Signal
	case o.ExitCode != 0:
		return fmt.Sprintf("compiler exited with status %d", o.ExitCode)
	}
	return ""
}

// fromCache copies a cached compile's artifacts into the work directory.
func (j *job) fromCache(key string) (*Compile, bool) {
	start := time.Now()
	meta, release, ok := j.r.cache.get(key)
	if !ok {
		return nil, false
	}
	defer release()
	for _, a := range meta.Files {
		if err := copyIn(j.root, j.r.cache.file(key, a.Name), a.Name, a.Mode); err != nil {
			// Compile instead; the compiler overwrites what was copied.
			j.r.log.Warn("compile cache: cannot copy artifact", "key", key, "file", a.Name, "err", err)
			return nil, false
		}
	}
	j.r.log.Debug("compile cache hit", "language", j.entry.Name, "key", key[:12])
	// The compiler's output counts against the job's budget as if it had
	// just run.
	return &Compile{
		Stdout: j.charge(meta.Stdout), Stderr: j.charge(meta.Stderr),
		Wall: time.Since(start), Cached: true,
	}, true
}

// charge takes b from the job's output budget and returns what of it fits.
func (j *job) charge(b []byte) []byte {
	return b[:j.budget.Take(int64(len(b)))]
}

// store puts what the compile produced into the cache.
func (j *job) store(key string, res *Compile) error {
	arts, err := listArtifacts(j.root, j.entry.Artifacts, j.files)
	if errors.Is(err, errTooManyArtifacts) {
		j.r.log.Debug("compile cache: too many artifacts, not stored", "language", j.entry.Name)
		return nil
	}
	if err != nil {
		return err
	}
	if len(arts) == 0 {
		return nil // nothing to reuse (a compile that only checks)
	}
	meta := &cacheMeta{Files: arts, Stdout: res.Stdout, Stderr: res.Stderr}
	return j.r.cache.put(key, meta, func(name, dst string, a artifact) (int64, error) {
		return copyOut(j.root, name, dst, a.Mode|0o400)
	})
}

// cacheKey hashes everything that decides a compile's artifacts: the
// language and its toolchain (binary and version), the command and
// environment templates, the compile arguments, and every file, name and
// content, in name order. Each field is length-prefixed, so no two
// different inputs hash the same bytes.
func (j *job) cacheKey() string {
	h := sha256.New()
	str := func(s string) { writeField(h, []byte(s)) }
	list := func(l []string) {
		str(fmt.Sprint(len(l)))
		for _, s := range l {
			str(s)
		}
	}
	str("grappe compile cache v1")
	str(j.entry.Name)
	str(j.tc.Version)
	str(j.tc.Bin)
	list(j.entry.Compile)
	list(j.entry.Env)
	list(j.entry.CompileEnv)
	list(j.spec.CompileArgs)
	str(j.vars.Main)
	str(j.vars.Class)
	files := slices.Clone(j.files)
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Name, b.Name) })
	str(fmt.Sprint(len(files)))
	for _, f := range files {
		str(f.Name)
		writeField(h, f.Content)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func writeField(h hash.Hash, b []byte) {
	var n [8]byte
	binary.LittleEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
