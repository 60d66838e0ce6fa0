package judge0

import (
	"fmt"
	"strings"

	"github.com/grappe/grappe/api"
)

// Status is one of Judge0's submission statuses.
type Status struct {
	ID          int    `json:"id"`
	Description string `json:"description"`
}

// Judge0's statuses, ids and names as app/enumerations/status.rb has them:
// clients compare ids, some the descriptions.
var statuses = []Status{
	{1, "In Queue"},
	{2, "Processing"},
	{3, "Accepted"},
	{4, "Wrong Answer"},
	{5, "Time Limit Exceeded"},
	{6, "Compilation Error"},
	{7, "Runtime Error (SIGSEGV)"},
	{8, "Runtime Error (SIGXFSZ)"},
	{9, "Runtime Error (SIGFPE)"},
	{10, "Runtime Error (SIGABRT)"},
	{11, "Runtime Error (NZEC)"},
	{12, "Runtime Error (Other)"},
	{13, "Internal Error"},
	{14, "Exec Format Error"},
}

const (
	stInQueue      = 1
	stProcessing   = 2
	stAccepted     = 3
	stWrongAnswer  = 4
	stTimeLimit    = 5
	stCompileError = 6
	stSIGSEGV      = 7
	stSIGXFSZ      = 8
	stSIGFPE       = 9
	stSIGABRT      = 10
	stNZEC         = 11
	stOther        = 12
	stInternal     = 13
)

func status(id int) Status { return statuses[id-1] }

// signalStatus is Judge0's runtime error status for a signal number
// (Status.find_runtime_error_by_status_code).
func signalStatus(sig int) int {
	switch sig {
	case 11:
		return stSIGSEGV
	case 25:
		return stSIGXFSZ
	case 8:
		return stSIGFPE
	case 6:
		return stSIGABRT
	}
	return stOther
}

// language ties a Judge0 language id to a grappe catalogue language.
type language struct {
	ID int
	// Grappe is the catalogue name.
	Grappe string
	// Name is Judge0's name with %s for the version the workers run, as
	// in "C (GCC %s)".
	Name       string
	SourceFile string
	CompileCmd string // empty: not compiled
	RunCmd     string
}

// languages are Judge0 CE's stable ids (db/languages/active.rb) for the
// languages grappe's catalogue has. A client that hard-codes 71 for
// Python keeps working; the name carries the version the workers really
// run. Other Judge0 ids (C#, Haskell, …) are absent until a catalogue
// entry runs them.
var languages = []language{
	{46, "bash", "Bash (%s)", "script.sh", "", "/bin/bash script.sh"},
	{50, "c", "C (GCC %s)", "main.c", "gcc -O2 -std=gnu17 %s main.c -lm", "./main"},
	{54, "cpp", "C++ (GCC %s)", "main.cpp", "g++ -O2 -std=gnu++17 %s main.cpp", "./main"},
	{60, "go", "Go (%s)", "main.go", "go build %s -o main main.go", "./main"},
	{62, "java", "Java (OpenJDK %s)", "Main.java", "javac %s Main.java", "java Main"},
	{63, "javascript", "JavaScript (Node.js %s)", "script.js", "", "node script.js"},
	{71, "python", "Python (%s)", "script.py", "", "python3 script.py"},
	{72, "ruby", "Ruby (%s)", "script.rb", "", "ruby script.rb"},
	{73, "rust", "Rust (%s)", "main.rs", "rustc -O %s main.rs", "./main"},
	{85, "perl", "Perl (%s)", "script.pl", "", "perl script.pl"},
}

// name is the language's Judge0 name with the version the workers run,
// or without a version when none runs it.
func (l language) name(version string) string {
	if version != "" {
		return fmt.Sprintf(l.Name, version)
	}
	return strings.Replace(strings.Replace(l.Name, " (%s)", "", 1), " %s", "", 1)
}

func languageByID(id int) (language, bool) {
	for _, l := range languages {
		if l.ID == id {
			return l, true
		}
	}
	return language{}, false
}

func languageByName(name string) (language, bool) {
	for _, l := range languages {
		if l.Grappe == name {
			return l, true
		}
	}
	return language{}, false
}

// languageEntry is one language of GET /languages.
type languageEntry struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

// languageDetail is the answer to GET /languages/{id}.
type languageDetail struct {
	ID         int     `json:"id"`
	Name       string  `json:"name"`
	IsArchived bool    `json:"is_archived"`
	SourceFile string  `json:"source_file"`
	CompileCmd *string `json:"compile_cmd"`
	RunCmd     string  `json:"run_cmd"`
}

// available lists the Judge0 languages the workers run now, in id order.
func available(langs []api.Language) []languageEntry {
	out := []languageEntry{}
	for _, l := range languages {
		for _, have := range langs {
			if have.Name == l.Grappe {
				out = append(out, languageEntry{ID: l.ID, Name: l.name(have.Version)})
				break
			}
		}
	}
	return out
}

func detail(l language, version string) languageDetail {
	d := languageDetail{ID: l.ID, Name: l.name(version), SourceFile: l.SourceFile, RunCmd: l.RunCmd}
	if l.CompileCmd != "" {
		d.CompileCmd = &l.CompileCmd
	}
	return d
}

// configInfo is GET /config_info: Judge0's configuration keys with the
// values grappe applies. Limits are the operator's, in Judge0's units.
func configInfo(def, mx api.Limits, maxBatch int) map[string]any {
	secs := func(ms int64) float64 { return float64(ms) / 1000 }
	return map[string]any{
		"maintenance_mode":                                 false,
		"enable_wait_result":                               true,
		"enable_compiler_options":                          true,
		"allowed_languages_for_compile_options":            []string{},
		"enable_command_line_arguments":                    true,
		"enable_submission_delete":                         false,
		"enable_callbacks":                                 true,
		"callbacks_max_tries":                              0,
		"callbacks_timeout":                                0,
		"enable_additional_files":                          true,
		"max_queue_size":                                   0,
		"cpu_time_limit":                                   secs(def.CPUMs),
		"max_cpu_time_limit":                               secs(mx.CPUMs),
		"cpu_extra_time":                                   0,
		"max_cpu_extra_time":                               0,
		"wall_time_limit":                                  secs(def.WallMs),
		"max_wall_time_limit":                              secs(mx.WallMs),
		"memory_limit":                                     def.MemoryMB * 1024,
		"max_memory_limit":                                 mx.MemoryMB * 1024,
		"stack_limit":                                      0,
		"max_stack_limit":                                  0,
		"max_processes_and_or_threads":                     def.Processes,
		"max_max_processes_and_or_threads":                 mx.Processes,
		"enable_per_process_and_thread_time_limit":         false,
		"allow_enable_per_process_and_thread_time_limit":   false,
		"enable_per_process_and_thread_memory_limit":       false,
		"allow_enable_per_process_and_thread_memory_limit": false,
		"max_file_size":                                    def.OutputKB,
		"max_max_file_size":                                mx.OutputKB,
		"number_of_runs":                                   1,
		"max_number_of_runs":                               maxRuns,
		"redirect_stderr_to_stdout":                        false,
		"max_extract_size":                                 maxExtractKB,
		"enable_batched_submissions":                       true,
		"max_submission_batch_size":                        maxBatch,
		"submission_cache_duration":                        0,
		"use_docs_as_homepage":                             false,
		"allow_enable_network":                             false,
		"enable_network":                                   false,
		"disable_implicit_base64_encoding":                 false,
	}
}
