// Package jobspec is the canonical job spec: the rules a job must satisfy,
// validated once at submission by the master and applied again, by the same
// code, by the runner on the worker. A rule written twice drifts (the master
// once accepted a file named "-x.c" that the worker then refused), so every
// rule about what a job may contain lives here.
//
// It holds the file-name rule, the compile-flag allow-list check, the
// whole-job output budget, and Validate: every rule of a submission
// (names, encodings, limits, per-language flags, caps), applied once at
// submission; Normalize makes the stored request canonical (the
// catalogue's language name, every limit filled). Still to come (issue
// 12): the stored request in jobspec's own form, dispatched from the store
// and turned into the sandbox command without another set of rules.
package jobspec
