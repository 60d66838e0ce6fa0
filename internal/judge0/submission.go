package judge0

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grappe/grappe/api"
)

// Caps Judge0 documents, applied as Judge0 applies them.
const (
	maxRuns         = 20
	maxOptionChars  = 512
	maxExtractKB    = 10240
	minMemoryKB     = 2048
	maxAdditionalFn = 200
)

// fieldErrors is Judge0's 422 body: each field with its messages.
type fieldErrors map[string][]string

func (e fieldErrors) add(field, msg string) { e[field] = append(e[field], msg) }

// parsed is a submission read from a request, before it becomes a job.
type parsed struct {
	req      *api.JobRequest
	redirect bool // redirect_stderr_to_stdout
}

// parseSubmission reads one submission object as Judge0 does: values may
// be JSON numbers or strings holding them (Rails casts both), unknown
// attributes are ignored, and every invalid field is reported at once.
func parseSubmission(raw json.RawMessage, b64 bool) (*parsed, fieldErrors, error) {
	var in map[string]json.RawMessage
	if err := json.Unmarshal(raw, &in); err != nil || in == nil {
		return nil, nil, fmt.Errorf("the submission must be a JSON object")
	}
	errs := fieldErrors{}
	req := &api.JobRequest{}
	out := &parsed{req: req}

	text := func(name string) (string, bool) {
		s, ok, valid := stringValue(in[name])
		if !valid {
			errs.add(name, "must be a string")
			return "", false
		}
		if ok && b64 && (name == "source_code" || name == "stdin" || name == "expected_output") {
			b, err := decodeBase64(s)
			if err != nil {
				errs.add(name, "is not valid Base64")
				return "", false
			}
			s = string(b)
		}
		return s, ok
	}
	number := func(name string) (float64, bool) {
		f, ok, valid := numberValue(in[name])
		if !valid {
			errs.add(name, "is not a number")
			return 0, false
		}
		return f, ok
	}

	src, hasSrc := text("source_code")
	if (!hasSrc || strings.TrimSpace(src) == "") && len(errs["source_code"]) == 0 {
		errs.add("source_code", "can't be blank")
	} else if !utf8.ValidString(src) {
		errs.add("source_code", "must be UTF-8 text")
	}
	req.Source = src

	id, hasID := number("language_id")
	var lang language
	switch {
	case !hasID:
		if len(errs["language_id"]) == 0 {
			errs.add("language_id", "can't be blank")
		}
	default:
		var ok bool
		if lang, ok = languageByID(int(id)); !ok || id != math.Trunc(id) {
			errs.add("language_id", fmt.Sprintf("language with id %s doesn't exist", formatNumber(id)))
		}
		req.Language = lang.Grappe
	}

	if s, ok := text("stdin"); ok {
		if utf8.ValidString(s) {
			req.Stdin = s
		} else {
			req.Stdin, req.StdinEncoding = base64.StdEncoding.EncodeToString([]byte(s)), api.EncodingBase64
		}
	}
	if s, ok := text("expected_output"); ok {
		// grappe keeps the expected output as text: bytes that are not
		// UTF-8 would not survive and could never match.
		if !utf8.ValidString(s) {
			errs.add("expected_output", "must be UTF-8 text")
		}
		req.ExpectedOutput = &s
	}
	if s, ok := text("compiler_options"); ok && strings.TrimSpace(s) != "" {
		switch {
		case len(s) > maxOptionChars:
			errs.add("compiler_options", fmt.Sprintf("is too long (maximum is %d characters)", maxOptionChars))
		case lang.ID != 0 && lang.CompileCmd == "":
			errs.add("compiler_options", "setting compiler options is only allowed for compiled languages")
		default:
			req.CompileArgs = shellWords(s)
		}
	}
	if s, ok := text("command_line_arguments"); ok && strings.TrimSpace(s) != "" {
		if len(s) > maxOptionChars {
			errs.add("command_line_arguments", fmt.Sprintf("is too long (maximum is %d characters)", maxOptionChars))
		} else {
			req.Args = shellWords(s)
		}
	}

	// Limits: Judge0's units (seconds, kilobytes) to grappe's. An absent
	// limit is the operator's default.
	if f, ok := number("cpu_time_limit"); ok {
		if f < 0 {
			errs.add("cpu_time_limit", "must be greater than or equal to 0")
		}
		req.Limits.CPUMs = int64(math.Ceil(f * 1000))
	}
	if f, ok := number("wall_time_limit"); ok {
		if f < 1 {
			errs.add("wall_time_limit", "must be greater than or equal to 1")
		}
		req.Limits.WallMs = int64(math.Ceil(f * 1000))
	}
	if f, ok := number("memory_limit"); ok {
		if f < minMemoryKB {
			errs.add("memory_limit", fmt.Sprintf("must be greater than or equal to %d", minMemoryKB))
		}
		req.Limits.MemoryMB = int64(math.Ceil(f / 1024))
	}
	if f, ok := number("max_processes_and_or_threads"); ok {
		if f <= 0 {
			errs.add("max_processes_and_or_threads", "must be greater than 0")
		}
		req.Limits.Processes = int64(f)
	}
	if f, ok := number("number_of_runs"); ok {
		if f <= 0 {
			errs.add("number_of_runs", "must be greater than 0")
		} else if f > maxRuns {
			errs.add("number_of_runs", fmt.Sprintf("must be less than or equal to %d", maxRuns))
		}
	}
	// Accepted for compatibility, checked, not applied: grappe's sandbox
	// has no per-job knob for them (see the README).
	for _, name := range []string{"cpu_extra_time", "stack_limit", "max_file_size"} {
		if f, ok := number(name); ok && f < 0 {
			errs.add(name, "must be greater than or equal to 0")
		}
	}
	if b, _, valid := boolValue(in["redirect_stderr_to_stdout"]); !valid {
		errs.add("redirect_stderr_to_stdout", "must be true or false")
	} else {
		out.redirect = b
	}
	if b, _, valid := boolValue(in["enable_network"]); !valid || b {
		errs.add("enable_network", "enabling network is not allowed")
	}
	for _, name := range []string{"enable_per_process_and_thread_time_limit", "enable_per_process_and_thread_memory_limit"} {
		if b, _, valid := boolValue(in[name]); !valid || b {
			errs.add(name, "this option cannot be enabled")
		}
	}
	if s, ok, valid := stringValue(in["callback_url"]); !valid {
		errs.add("callback_url", "must be a string")
	} else if ok {
		// Checked by the master (http or https, an address callbacks
		// may reach); sent as Judge0 sends it, a PUT of the submission.
		req.CallbackURL = s
	}
	if s, ok, valid := stringValue(in["additional_files"]); !valid {
		errs.add("additional_files", "must be a Base64 encoded zip archive")
	} else if ok && s != "" {
		files, err := unzipFiles(s)
		if err != nil {
			errs.add("additional_files", err.Error())
		}
		req.Files = files
	}
	if len(errs) > 0 {
		return nil, errs, nil
	}
	return out, nil, nil
}

// unzipFiles turns additional_files (a Base64 zip) into the job's extra
// files, all Base64 so that binaries pass unchanged.
func unzipFiles(s string) ([]api.File, error) {
	data, err := decodeBase64(s)
	if err != nil {
		return nil, fmt.Errorf("is not valid Base64")
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("is not a valid zip archive")
	}
	var files []api.File
	var total int64
	for _, f := range zr.File {
		if f.FileInfo().IsDir() {
			continue
		}
		if len(files) == maxAdditionalFn {
			return nil, fmt.Errorf("has more than %d files", maxAdditionalFn)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("cannot be read: %v", err)
		}
		// Bounded by what is left of the budget, whatever the header
		// claims: a zip bomb stops here.
		b, err := io.ReadAll(io.LimitReader(rc, maxExtractKB<<10-total+1))
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("cannot be read: %v", err)
		}
		if total += int64(len(b)); total > maxExtractKB<<10 {
			return nil, fmt.Errorf("extracts to more than %d KB", maxExtractKB)
		}
		// grappe checks the names (no absolute path, no ..) as for any
		// job's files.
		files = append(files, api.File{Name: path.Clean(f.Name), Content: base64.StdEncoding.EncodeToString(b), Encoding: api.EncodingBase64})
	}
	return files, nil
}

// shellWords splits a command line as the shell would for plain words
// and quotes. Judge0 hands it to bash after deleting $&;<>|` ; grappe runs
// no shell, so those are deleted the same way and quotes are honoured.
func shellWords(s string) []string {
	s = strings.Map(func(r rune) rune {
		if strings.ContainsRune("$&;<>|`", r) {
			return -1
		}
		return r
	}, s)
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for i := 0; i < len(s); i++ {
		c := rune(s[i])
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else if c == '\\' && quote == '"' && i+1 < len(s) && strings.ContainsRune(`"\`, rune(s[i+1])) {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteRune(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

func isNull(raw json.RawMessage) bool { return len(raw) == 0 || string(raw) == "null" }

// stringValue reads a text attribute: a string, or a number Rails would
// cast. ok is false when absent or null; valid false for other types.
func stringValue(raw json.RawMessage) (s string, ok, valid bool) {
	if isNull(raw) {
		return "", false, true
	}
	if raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return "", false, false
		}
		return s, true, true
	}
	var f float64
	if json.Unmarshal(raw, &f) == nil {
		return string(raw), true, true
	}
	return "", false, false
}

// numberValue reads a numeric attribute: a number or a numeric string;
// an empty string is absent, as for Rails.
func numberValue(raw json.RawMessage) (f float64, ok, valid bool) {
	if isNull(raw) {
		return 0, false, true
	}
	if json.Unmarshal(raw, &f) == nil {
		return f, true, true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return 0, false, false
	}
	if s = strings.TrimSpace(s); s == "" {
		return 0, false, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, false, false
	}
	return f, true, true
}

// boolValue reads a boolean attribute: true/false, "true"/"false", 1/0.
func boolValue(raw json.RawMessage) (b, ok, valid bool) {
	if isNull(raw) {
		return false, false, true
	}
	switch strings.Trim(string(raw), `"`) {
	case "true", "1", "t":
		return true, true, true
	case "false", "0", "f", "":
		return false, true, true
	}
	return false, false, false
}

// decodeBase64 is as lenient as Ruby's decode64: line breaks and missing
// padding are accepted, and the URL alphabet too.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, s)
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// encodeBase64 is Ruby's encode64, which Judge0 answers with: a line
// break every 60 characters and at the end.
func encodeBase64(b []byte) string {
	enc := base64.StdEncoding.EncodeToString(b)
	var sb strings.Builder
	for len(enc) > 60 {
		sb.WriteString(enc[:60])
		sb.WriteByte('\n')
		enc = enc[60:]
	}
	sb.WriteString(enc)
	sb.WriteByte('\n')
	return sb.String()
}

func formatNumber(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// seconds formats milliseconds as Judge0 writes its decimal times: "0.002".
func seconds(ms int64) string {
	s := strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// railsTime is how Rails writes a datetime in JSON.
func railsTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// Token suffixes: a submission's token is its grappe job id, with the
// Judge0 options grappe's job does not hold appended, so that any master
// answers it the same way (and the token stays a valid job id prefix).
const redirectSuffix = ".r"

func tokenOf(jobID string, redirect bool) string {
	if redirect {
		return jobID + redirectSuffix
	}
	return jobID
}

func parseToken(token string) (jobID string, redirect bool) {
	if id, ok := strings.CutSuffix(token, redirectSuffix); ok {
		return id, true
	}
	return token, false
}

// allFields are the attributes a submission has (SubmissionSerializer:
// the table's columns and status and language), in Judge0's order.
var allFields = []string{
	"source_code", "language_id", "stdin", "expected_output", "stdout", "status_id", "created_at",
	"finished_at", "time", "memory", "stderr", "token", "number_of_runs", "cpu_time_limit",
	"cpu_extra_time", "wall_time_limit", "memory_limit", "stack_limit", "max_processes_and_or_threads",
	"enable_per_process_and_thread_time_limit", "enable_per_process_and_thread_memory_limit",
	"max_file_size", "compile_output", "exit_code", "exit_signal", "message", "wall_time",
	"compiler_options", "command_line_arguments", "redirect_stderr_to_stdout", "callback_url",
	"additional_files", "enable_network", "started_at", "queued_at", "updated_at", "queue_host",
	"execution_host", "status", "language",
}

var defaultFields = []string{"token", "time", "memory", "stdout", "stderr", "compile_output", "message", "status"}

// requestedFields reads ?fields= as Fields::Submission does: "*" is every
// field, unknown names are an error, nothing valid means the defaults.
func requestedFields(param string) ([]string, []string) {
	var fields, invalid []string
	all := false
	for _, f := range strings.Split(param, ",") {
		switch {
		case f == "":
		case f == "*":
			all = true
		case slices.Contains(allFields, f):
			fields = append(fields, f)
		default:
			invalid = append(invalid, f)
		}
	}
	if all {
		return allFields, invalid
	}
	if len(fields) == 0 {
		return defaultFields, invalid
	}
	return fields, invalid
}
