package judge0

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/grappe/grappe/api"
)

// outcome is what a job says in Judge0's terms.
type outcome struct {
	status        int
	stdout        []byte // nil: absent (Judge0 answers null for empty)
	stderr        []byte
	compileOutput []byte
	message       string
	exitCode      *int
	exitSignal    *int
	timeMs        *int64
	wallMs        *int64
	memoryKB      *int64
}

// judge maps a grappe job onto Judge0's status and result fields.
func judge(job *api.Job, redirect bool) outcome {
	var o outcome
	if job.Compile != nil {
		o.compileOutput = nonEmpty(append(raw(job.Compile.Stdout, job.Compile.StdoutEncoding), raw(job.Compile.Stderr, job.Compile.StderrEncoding)...))
	}
	switch job.Status {
	case api.StatusQueued:
		o.status = stInQueue
		return o
	case api.StatusRunning:
		o.status = stProcessing
		return o
	case api.StatusCancelled:
		o.status, o.message = stInternal, "the submission was cancelled"
		return o
	case api.StatusFailed:
		o.status, o.message = stInternal, job.Error
		return o
	}
	if job.Verdict == api.VerdictCompileError || job.Run == nil {
		// Judge0 clears everything but compile_output on a failed compile.
		o.status = stCompileError
		return o
	}
	r := job.Run
	o.stdout = raw(r.Stdout, r.StdoutEncoding)
	o.stderr = raw(r.Stderr, r.StderrEncoding)
	if redirect {
		// grappe keeps the streams apart: stderr follows stdout rather
		// than being interleaved with it.
		o.stdout, o.stderr = append(o.stdout, o.stderr...), nil
	}
	o.stdout, o.stderr = nonEmpty(o.stdout), nonEmpty(o.stderr)
	o.timeMs, o.wallMs, o.memoryKB = &r.CPUMs, &r.WallMs, &r.MemoryKB
	code := r.ExitCode
	o.exitCode = &code
	sig := 0
	if r.Signal != "" {
		sig = int(unix.SignalNum(r.Signal))
		// isolate reports no exit code for a killed program; Judge0
		// then says 0.
		code = 0
		o.exitSignal = &sig
	}
	switch {
	case job.Verdict == api.VerdictTimeLimit:
		o.status, o.message = stTimeLimit, "Time limit exceeded"
	case job.Verdict == api.VerdictMemoryLimit:
		o.status, o.message = stOther, "Memory limit exceeded"
	case job.Verdict == api.VerdictOutputLimit:
		o.status, o.message = stSIGXFSZ, "Output limit exceeded"
	case r.Signal != "":
		o.status, o.message = signalStatus(sig), fmt.Sprintf("Caught fatal signal %d", sig)
	case r.ExitCode != 0:
		o.status, o.message = stNZEC, fmt.Sprintf("Exited with error status %d", r.ExitCode)
	case job.Request != nil && job.Request.ExpectedOutput != nil && !sameOutput(o.stdout, []byte(*job.Request.ExpectedOutput)):
		o.status = stWrongAnswer
	default:
		o.status = stAccepted
	}
	return o
}

// sameOutput is Judge0's comparison (IsolateJob#strip): each line's
// trailing whitespace removed, then the whole text's. It differs from
// grappe's own only in details (Ruby's rstrip also drops NUL bytes), but
// a Judge0 client gets exactly Judge0's verdict.
func sameOutput(got, want []byte) bool {
	return bytes.Equal(judgeStrip(got), judgeStrip(want))
}

const rubySpace = " \t\n\v\f\r\x00"

func judgeStrip(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimRight(l, rubySpace)
	}
	return bytes.TrimRight(bytes.Join(lines, []byte("\n")), rubySpace)
}

func raw(s, encoding string) []byte {
	if encoding == api.EncodingBase64 {
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			return b
		}
	}
	return []byte(s)
}

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// errNotUTF8 is Judge0's answer when a text attribute cannot be sent
// as JSON text.
const errNotUTF8 = "some attributes for this submission cannot be converted to UTF-8, use base64_encoded=true query parameter"

// render builds the submission's JSON object with the requested fields.
// Without base64, a text field that is not UTF-8 makes it an error.
func render(job *api.Job, token string, redirect, b64 bool, fields []string) (map[string]any, error) {
	o := judge(job, redirect)
	req := job.Request
	if req == nil {
		req = &api.JobRequest{}
	}
	out := make(map[string]any, len(fields))
	var bad bool
	text := func(b []byte) any {
		if b == nil {
			return nil
		}
		if b64 {
			return encodeBase64(b)
		}
		if !utf8.Valid(b) {
			bad = true
		}
		return string(b)
	}
	// A job in a language Judge0 has no id for (submitted through
	// grappe's own API) shows a null id and grappe's name.
	var langID any
	langName := job.Language
	if lang, ok := languageByName(job.Language); ok {
		langID, langName = lang.ID, lang.name(job.Version)
	}
	for _, f := range fields {
		var v any
		switch f {
		case "token":
			v = token
		case "source_code":
			v = text(sourceOf(req))
		case "language_id":
			v = langID
		case "language":
			v = map[string]any{"id": langID, "name": langName}
		case "stdin":
			v = text(nonEmpty(raw(req.Stdin, req.StdinEncoding)))
		case "expected_output":
			if req.ExpectedOutput != nil {
				v = text([]byte(*req.ExpectedOutput))
			}
		case "stdout":
			v = text(o.stdout)
		case "stderr":
			v = text(o.stderr)
		case "compile_output":
			v = text(o.compileOutput)
		case "message":
			if o.message != "" {
				v = text([]byte(o.message))
			}
		case "status":
			v = status(o.status)
		case "status_id":
			v = o.status
		case "created_at", "queued_at":
			v = railsTime(job.CreatedAt)
		case "started_at":
			if job.StartedAt != nil {
				v = railsTime(*job.StartedAt)
			}
		case "finished_at":
			if job.FinishedAt != nil {
				v = railsTime(*job.FinishedAt)
			}
		case "updated_at":
			v = railsTime(job.CreatedAt)
			if job.FinishedAt != nil {
				v = railsTime(*job.FinishedAt)
			} else if job.StartedAt != nil {
				v = railsTime(*job.StartedAt)
			}
		case "time":
			if o.timeMs != nil {
				v = seconds(*o.timeMs)
			}
		case "wall_time":
			if o.wallMs != nil {
				v = seconds(*o.wallMs)
			}
		case "memory":
			if o.memoryKB != nil {
				v = *o.memoryKB
			}
		case "exit_code":
			if o.exitCode != nil {
				v = *o.exitCode
			}
		case "exit_signal":
			if o.exitSignal != nil {
				v = *o.exitSignal
			}
		case "number_of_runs":
			v = 1
		case "cpu_time_limit":
			v = seconds(req.Limits.CPUMs)
		case "wall_time_limit":
			v = seconds(req.Limits.WallMs)
		case "memory_limit":
			v = req.Limits.MemoryMB * 1024
		case "max_processes_and_or_threads":
			v = req.Limits.Processes
		case "max_file_size":
			v = req.Limits.OutputKB
		case "cpu_extra_time":
			v = "0.0"
		case "stack_limit":
			v = 0
		case "enable_per_process_and_thread_time_limit", "enable_per_process_and_thread_memory_limit", "enable_network":
			v = false
		case "redirect_stderr_to_stdout":
			v = redirect
		case "compiler_options":
			if len(req.CompileArgs) > 0 {
				v = strings.Join(req.CompileArgs, " ")
			}
		case "command_line_arguments":
			if len(req.Args) > 0 {
				v = strings.Join(req.Args, " ")
			}
		case "additional_files", "callback_url":
			// additional_files are stored as the job's files, not as
			// the archive they came in.
		case "queue_host", "execution_host":
			if f == "execution_host" && job.Worker != "" {
				v = job.Worker
			}
		}
		out[f] = v
	}
	if bad {
		return nil, fmt.Errorf("%s", errNotUTF8)
	}
	return out, nil
}

// sourceOf is the main source of a job: Source, or the first file.
func sourceOf(req *api.JobRequest) []byte {
	if req.Source != "" {
		return []byte(req.Source)
	}
	if len(req.Files) > 0 {
		return raw(req.Files[0].Content, req.Files[0].Encoding)
	}
	return nil
}

// CallbackBody is the body of the PUT that Judge0 sends to a
// submission's callback_url when it is finished: the submission's default
// fields, base64-encoded, as Judge0 sends them whatever the submission
// asked.
func CallbackBody(job *api.Job, redirect bool) ([]byte, error) {
	out, err := render(job, tokenOf(job.ID, redirect), redirect, true, defaultFields)
	if err != nil {
		return nil, err
	}
	return json.Marshal(out)
}
