package piston

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/grappe/grappe/api"
)

// executeRequest is the body of POST /api/v2/execute. The fields Piston
// type-checks itself are kept raw, so that a wrong type gets Piston's
// message rather than a JSON decoding error.
type executeRequest struct {
	Language json.RawMessage `json:"language"`
	Version  json.RawMessage `json:"version"`
	Files    json.RawMessage `json:"files"`
	Stdin    *string         `json:"stdin"`
	Args     []string        `json:"args"`

	CompileTimeout     json.RawMessage `json:"compile_timeout"`
	RunTimeout         json.RawMessage `json:"run_timeout"`
	CompileCPUTime     json.RawMessage `json:"compile_cpu_time"`
	RunCPUTime         json.RawMessage `json:"run_cpu_time"`
	CompileMemoryLimit json.RawMessage `json:"compile_memory_limit"`
	RunMemoryLimit     json.RawMessage `json:"run_memory_limit"`
}

type file struct {
	Name     string          `json:"name"`
	Content  json.RawMessage `json:"content"`
	Encoding string          `json:"encoding"`
}

// selected is the runtime an execute resolved to.
type selected struct {
	Language string
	Version  string
}

// jobRequest checks the request the way Piston does, picks the runtime
// among the languages the workers run and builds the grappe job.
func (in *executeRequest) jobRequest(langs []api.Language, aliases func(string) []string) (*api.JobRequest, selected, error) {
	var rt selected
	language, ok := stringOf(in.Language)
	if !ok || language == "" {
		return nil, rt, badRequest("language is required as a string")
	}
	version, ok := stringOf(in.Version)
	if !ok || version == "" {
		return nil, rt, badRequest("version is required as a string")
	}
	var files []file
	if len(in.Files) == 0 || json.Unmarshal(in.Files, &files) != nil || in.Files[0] != '[' {
		return nil, rt, badRequest("files is required as an array")
	}
	contents := make([]string, len(files))
	for i, f := range files {
		c, ok := stringOf(f.Content)
		if !ok {
			return nil, rt, badRequest("files[%d].content is required as a string", i)
		}
		contents[i] = c
	}
	rt, found := resolve(langs, aliases, language, version)
	if !found {
		return nil, rt, badRequest("%s-%s runtime is unknown", language, version)
	}
	// Piston runs the first utf8 file; the others are data beside it.
	main := slices.IndexFunc(files, func(f file) bool { return f.Encoding == "" || f.Encoding == "utf8" || !knownEncoding(f.Encoding) })
	if main < 0 {
		return nil, rt, badRequest("files must include at least one utf8 encoded file")
	}
	req := &api.JobRequest{Language: rt.Language, Version: rt.Version, Args: in.Args}
	for i, f := range files {
		name := f.Name
		if i == main && name == "" {
			// grappe names an unnamed main source as its language
			// wants it (Main.java, main.c).
			req.Source = contents[i]
			continue
		}
		if name == "" {
			name = fmt.Sprintf("file%d.code", i)
		}
		content, enc, err := encodeFile(contents[i], f.Encoding)
		if err != nil {
			return nil, rt, badRequest("files[%d].content: %v", i, err)
		}
		af := api.File{Name: name, Content: content, Encoding: enc}
		if i == main {
			req.Files = slices.Insert(req.Files, 0, af)
		} else {
			req.Files = append(req.Files, af)
		}
	}
	if in.Stdin != nil {
		req.Stdin = *in.Stdin
	}
	// Piston ends stdin with a newline when it has none: programs that
	// read a line of it behave the same here.
	if !strings.HasSuffix(req.Stdin, "\n") {
		req.Stdin += "\n"
	}
	limits := []struct {
		name string
		raw  json.RawMessage
		set  *int64
		conv func(int64) int64
	}{
		{"run_timeout", in.RunTimeout, &req.Limits.WallMs, nil},
		{"run_cpu_time", in.RunCPUTime, &req.Limits.CPUMs, nil},
		{"run_memory_limit", in.RunMemoryLimit, &req.Limits.MemoryMB, bytesToMB},
		// grappe's compile step runs under the operator's limits: a
		// job cannot change them, but they are checked as Piston does.
		{"compile_timeout", in.CompileTimeout, nil, nil},
		{"compile_cpu_time", in.CompileCPUTime, nil, nil},
		{"compile_memory_limit", in.CompileMemoryLimit, nil, nil},
	}
	for _, l := range limits {
		v, present, err := limitOf(l.name, l.raw)
		if err != nil {
			return nil, rt, err
		}
		// Absent, 0 and -1 all mean the operator's default.
		if !present || v <= 0 || l.set == nil {
			continue
		}
		if l.conv != nil {
			v = l.conv(v)
		}
		*l.set = v
	}
	return req, rt, nil
}

func knownEncoding(e string) bool { return e == "utf8" || e == "base64" || e == "hex" }

// encodeFile turns a Piston file content into grappe's encodings. Piston
// reads an unknown encoding as utf8.
func encodeFile(content, encoding string) (string, string, error) {
	switch encoding {
	case "base64":
		return content, api.EncodingBase64, nil
	case "hex":
		b, err := hex.DecodeString(content)
		if err != nil {
			return "", "", fmt.Errorf("invalid hex: %w", err)
		}
		return base64.StdEncoding.EncodeToString(b), api.EncodingBase64, nil
	}
	return content, "", nil
}

func bytesToMB(b int64) int64 { return (b + 1<<20 - 1) >> 20 }

// stringOf reports whether raw is a JSON string, and its value.
func stringOf(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// limitOf reads one of the numeric limits. Piston skips a falsy value
// (absent, null, 0) and refuses anything that is not a number.
func limitOf(name string, raw json.RawMessage) (int64, bool, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == "false" || string(raw) == `""` {
		return 0, false, nil
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil {
		return 0, false, badRequest("If specified, %s must be a number", name)
	}
	if f < 0 && f != -1 {
		return 0, false, badRequest("%s must be non-negative", name)
	}
	return int64(f), true, nil
}

// versions lists a language's installed versions, newest first as the
// workers announce them.
func versions(l api.Language) []string {
	if len(l.Versions) > 0 {
		return l.Versions
	}
	return []string{l.Version}
}

// pistonNames are Piston's names of the languages grappe's catalogue
// names otherwise. npm's piston-client finds a language's version in
// /runtimes by that exact name, so grappe lists and answers it so.
var pistonNames = map[string]string{"cpp": "c++"}

// pistonName is Piston's name of a catalogue language.
func pistonName(name string) string {
	if n, ok := pistonNames[name]; ok {
		return n
	}
	return name
}

// resolve finds the newest installed version of language (a name or an
// alias, any case) that satisfies the semver selector.
func resolve(langs []api.Language, aliases func(string) []string, language, selector string) (selected, bool) {
	language = strings.ToLower(language)
	for _, l := range langs {
		if l.Name != language && pistonName(l.Name) != language && !slices.Contains(aliases(l.Name), language) {
			continue
		}
		var best string
		for _, v := range versions(l) {
			if satisfies(v, selector) && (best == "" || compareVersions(v, best) > 0) {
				best = v
			}
		}
		if best != "" {
			return selected{Language: l.Name, Version: best}, true
		}
	}
	return selected{}, false
}

// satisfies is the part of npm's semver ranges that Piston clients send:
// "*", "x", exact ("3.10.0"), partial ("3", "3.10", "3.x", "3.*"),
// caret and tilde ("^3.8", "~3.10.1"), comparisons (">=3.8", "<4") and
// several of them separated by spaces (all must hold). Versions that are
// not semver (a toolchain's own "1.22rc1") match "*" and themselves.
func satisfies(version, selector string) bool {
	selector = strings.TrimSpace(selector)
	if selector == "" || selector == "*" || selector == "x" || selector == version {
		return true
	}
	v, ok := parseVersion(version)
	if !ok {
		return false
	}
	for _, part := range strings.Fields(selector) {
		if !satisfiesOne(v, part) {
			return false
		}
	}
	return true
}

func satisfiesOne(v [3]int, sel string) bool {
	op := ""
	for _, p := range []string{">=", "<=", ">", "<", "=", "^", "~", "v"} {
		if strings.HasPrefix(sel, p) {
			op, sel = p, sel[len(p):]
			break
		}
	}
	want, n, ok := parsePartial(sel)
	if !ok {
		return false
	}
	c := compare3(v, want)
	switch op {
	case ">=":
		return c >= 0
	case ">":
		return c > 0 && !prefixEqual(v, want, n)
	case "<=":
		return c <= 0 || prefixEqual(v, want, n)
	case "<":
		return c < 0 && !prefixEqual(v, want, n)
	case "^":
		if c < 0 {
			return false
		}
		// The leftmost non-zero part must stay the same.
		for i := 0; i < 3; i++ {
			if want[i] != 0 || i == n-1 || i == 2 {
				return prefixEqual(v, want, i+1)
			}
		}
		return true
	case "~":
		return c >= 0 && prefixEqual(v, want, max(min(n, 2), 1))
	}
	return prefixEqual(v, want, n)
}

// prefixEqual compares the first n parts.
func prefixEqual(a, b [3]int, n int) bool {
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func compare3(a, b [3]int) int {
	for i := range 3 {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// parseVersion reads the numeric prefix of a toolchain version: "3.11.2",
// "1.22.1", "21.0.2+13" (build metadata dropped), "12" (→ 12.0.0).
func parseVersion(s string) ([3]int, bool) {
	var v [3]int
	s, _, _ = strings.Cut(s, "+")
	s, _, _ = strings.Cut(s, "-")
	parts := strings.Split(s, ".")
	for i := 0; i < len(parts) && i < 3; i++ {
		n, err := strconv.Atoi(parts[i])
		if err != nil {
			return v, i > 0
		}
		v[i] = n
	}
	return v, true
}

// parsePartial reads a selector's version: how many parts it fixes ("3.x"
// fixes one).
func parsePartial(s string) ([3]int, int, bool) {
	var v [3]int
	parts := strings.Split(s, ".")
	n := 0
	for i := 0; i < len(parts) && i < 3; i++ {
		if parts[i] == "x" || parts[i] == "X" || parts[i] == "*" {
			break
		}
		k, err := strconv.Atoi(parts[i])
		if err != nil {
			return v, 0, false
		}
		v[i] = k
		n++
	}
	return v, n, true
}

func compareVersions(a, b string) int {
	va, _ := parseVersion(a)
	vb, _ := parseVersion(b)
	return compare3(va, vb)
}

// stage is a Piston stage result: run or compile.
type stage struct {
	Stdout   string  `json:"stdout"`
	Stderr   string  `json:"stderr"`
	Output   string  `json:"output"`
	Code     *int    `json:"code"`
	Signal   *string `json:"signal"`
	Message  *string `json:"message"`
	Status   *string `json:"status"`
	CPUTime  *int64  `json:"cpu_time"`
	WallTime *int64  `json:"wall_time"`
	Memory   *int64  `json:"memory"`
}

// executeResult is the answer to POST /api/v2/execute.
type executeResult struct {
	Language string `json:"language"`
	Version  string `json:"version"`
	Run      *stage `json:"run"`
	Compile  *stage `json:"compile,omitempty"`
}

// Piston's stage statuses, from isolate's meta file and Piston's own
// output caps.
const (
	statusRuntimeError = "RE" // exited with a non-zero status
	statusSignal       = "SG" // killed by a signal
	statusTimeout      = "TO"
	statusStdoutLimit  = "OL"
	statusStderrLimit  = "EL"
	statusInternal     = "XX"
)

// result maps a finished job onto Piston's answer.
func result(job *api.Job, rt selected) *executeResult {
	out := &executeResult{Language: pistonName(job.Language), Version: job.Version}
	if job.Language == "" {
		out.Language = pistonName(rt.Language)
	}
	if out.Version == "" {
		out.Version = rt.Version
	}
	if job.Compile != nil {
		out.Compile = compileStage(job.Compile)
	}
	switch {
	case job.Status != api.StatusDone:
		// Failed (no worker could run it, attempts exhausted) or
		// cancelled: Piston's internal error.
		msg := job.Error
		if msg == "" {
			msg = "job " + job.Status
		}
		out.Run = &stage{Status: ptr(statusInternal), Message: &msg}
	case job.Verdict == api.VerdictCompileError || job.Run == nil:
		// Piston answers a failed compile as the run stage too, so that
		// clients that only read run see the compiler's complaint.
		if out.Compile == nil {
			out.Compile = &stage{Status: ptr(statusInternal), Message: ptr("the program did not run")}
		}
		out.Run = out.Compile
	default:
		out.Run = runStage(job.Run, job.Verdict)
	}
	return out
}

func compileStage(c *api.Compile) *stage {
	s := &stage{
		Stdout: decoded(c.Stdout, c.StdoutEncoding),
		Stderr: decoded(c.Stderr, c.StderrEncoding),
		Code:   ptr(c.ExitCode), WallTime: ptr(c.WallMs),
	}
	s.Output = s.Stdout + s.Stderr
	if c.ExitCode != 0 {
		s.Status = ptr(statusRuntimeError)
		s.Message = ptr(fmt.Sprintf("Exited with error status %d", c.ExitCode))
	}
	return s
}

func runStage(r *api.Run, verdict string) *stage {
	s := &stage{
		Stdout:  decoded(r.Stdout, r.StdoutEncoding),
		Stderr:  decoded(r.Stderr, r.StderrEncoding),
		CPUTime: ptr(r.CPUMs), WallTime: ptr(r.WallMs), Memory: ptr(r.MemoryKB * 1024),
	}
	// grappe keeps the two streams apart; output is stdout then stderr,
	// not their interleaving.
	s.Output = s.Stdout + s.Stderr
	status, message := stageStatus(r, verdict)
	if status != "" {
		s.Status, s.Message = &status, &message
	}
	switch {
	case status == statusTimeout || status == statusStdoutLimit || status == statusStderrLimit:
		// Piston kills the program itself and reports SIGKILL.
		s.Signal = ptr("SIGKILL")
	case r.Signal != "":
		s.Signal = ptr(r.Signal)
	case status == statusSignal:
		// Killed for its memory: the kernel's SIGKILL.
		s.Signal = ptr("SIGKILL")
	default:
		s.Code = ptr(r.ExitCode)
	}
	return s
}

// stageStatus is Piston's status and message of a run: empty for a run
// that exited 0 (whatever its output, which Piston does not judge).
func stageStatus(r *api.Run, verdict string) (string, string) {
	switch {
	case verdict == api.VerdictTimeLimit:
		return statusTimeout, "Time limit exceeded"
	case verdict == api.VerdictOutputLimit || r.OutputTruncated:
		if len(r.Stdout) >= len(r.Stderr) {
			return statusStdoutLimit, "stdout length exceeded"
		}
		return statusStderrLimit, "stderr length exceeded"
	case verdict == api.VerdictMemoryLimit:
		return statusSignal, "Memory limit exceeded"
	case r.Signal != "":
		// isolate's message, with the signal's number.
		return statusSignal, fmt.Sprintf("Caught fatal signal %d", int(unix.SignalNum(r.Signal)))
	case r.ExitCode != 0:
		return statusRuntimeError, fmt.Sprintf("Exited with error status %d", r.ExitCode)
	}
	return "", ""
}

// decoded returns output as text: bytes that are not UTF-8 come to the
// client as JSON replaces them, as Piston's own toString() does.
func decoded(s, encoding string) string {
	if encoding != api.EncodingBase64 {
		return s
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return s
	}
	return strings.ToValidUTF8(string(b), "\ufffd")
}

func ptr[T any](v T) *T { return &v }
