// Package runner turns a job spec into a result: it lays the sources out in
// a private work directory, compiles them once (through a content-addressed
// compile cache), runs the program once or once per test case through a
// sandbox.Sandbox, and decides the verdict.
//
// # Pipeline
//
// Run looks the language up in the catalogue (names and aliases) and picks a
// configured toolchain whose version satisfies Spec.Version (equal, or a
// prefix ending at a dot: "3.11" matches "3.11.2"); otherwise it fails with
// ErrNoToolchain. It writes the files into a fresh 0700 directory under
// Config.WorkRoot, refusing names that could leave it (ErrBadSpec, see
// jobspec.CheckFileName); an unnamed file gets the language's default name (Java: named
// after its public class). The directory is removed when Run returns.
//
// A compiled language is compiled once, under Config.Compile limits, with
// Spec.CompileArgs where the catalogue's {compile_args} stands (each on the
// language's allow-list, jobspec.CheckCompileArgs, else ErrBadSpec). A
// failing compile is the verdict compile_error, with the compiler's output
// in Result.Compile, and nothing runs. A toolchain cache ({cache}) is a
// seed only self-tests fill, seen by each compile under a private layer
// (toolcache.go): no compile writes anything another job sees.
//
// # Compile cache
//
// The language's declared artifacts (lang.Entry.Artifacts) that a
// successful compile produced are stored under
// CacheDir/compile/<key>, where key is a SHA-256 over the language, the
// toolchain's binary and version, the compile command and environment
// templates, the compile arguments and every file's name and content. A
// later identical job copies them in instead of compiling
// (Compile.Cached). Entries appear atomically (rename of a complete
// directory), identical jobs arriving together compile once, and the least
// recently used entries are evicted past Config.CacheMaxBytes or
// Config.CacheMaxFiles; an entry has at most maxEntryFiles files. Compile
// errors are not cached.
//
// # Output budget
//
// Limits.TotalOutputBytes bounds the whole job's output: the compiler's
// (also when it comes from the cache) and both streams of every run. It is
// a sandbox.OutputBudget shared by every command of the job, enforced as
// the pipes are read; once it is exceeded the job stops, with the verdict
// output_limit.
//
// # Verdicts
//
// Each run's verdict is, in this order of precedence: time_limit (CPU or
// wall limit), memory_limit, output_limit (stdout or stderr past the
// limit), runtime_error (killed by a signal or a non-zero exit status),
// wrong_answer (an expected output was given and EqualOutput says stdout
// differs), else ok. With test cases the program is compiled once and run
// once per test with its own stdin and expected output; the job's verdict
// and Result.Run are those of the first failing test (or of the last test
// when all pass), and StopOnFailure skips the tests after it.
package runner
