// Package runner turns a job spec into a result: it lays the sources out in
// a private work directory, compiles them once (through a content-addressed
// compile cache), runs the program once or once per test case through a
// sandbox.Sandbox, and decides the verdict.
package runner
