package jobspec

// The whole-job output budget (limits.total_output_kb): every byte of
// output a job produces, compile output and both streams of every run and
// test together, is counted against it while the pipes are read, and
// nothing past it is kept. A job past it gets the verdict output_limit and
// stops. It bounds what a job's result costs the worker's memory (output
// is buffered outside the job's cgroup) and the transport: even the
// maximum stays far below gRPC's 64 MiB message with protobuf and base64
// overhead.
const (
	DefaultTotalOutputKB = 8 << 10  // 8 MiB
	MaxTotalOutputKB     = 32 << 10 // 32 MiB: the operator's ceiling
)
