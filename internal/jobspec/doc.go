// Package jobspec is the canonical job spec: the rules a job must satisfy,
// validated once at submission by the master and applied again, by the same
// code, by the runner on the worker. A rule written twice drifts (the master
// once accepted a file named "-x.c" that the worker then refused), so every
// rule about what a job may contain lives here.
//
// Today it holds the file-name rule, the compile-flag allow-list check and
// the whole-job output budget; issue 12 grows it into the one job shape
// that is stored, dispatched and turned into sandbox commands.
package jobspec
