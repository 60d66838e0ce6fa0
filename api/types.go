package api

import "time"

// Job statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusDone      = "done"
	StatusCancelled = "cancelled"
	StatusFailed    = "failed"
)

// Verdicts, set when a job's status is done.
const (
	VerdictOK           = "ok"
	VerdictWrongAnswer  = "wrong_answer"
	VerdictCompileError = "compile_error"
	VerdictRuntimeError = "runtime_error"
	VerdictTimeLimit    = "time_limit"
	VerdictMemoryLimit  = "memory_limit"
	VerdictOutputLimit  = "output_limit"
)

// Encodings of file contents, stdin and output.
const (
	EncodingUTF8   = "utf8"
	EncodingBase64 = "base64"
)

// Roles of users.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Worker statuses.
const (
	WorkerUp       = "up"
	WorkerDraining = "draining"
	// WorkerUnhealthy: its own machinery (sandbox, cgroups) keeps failing;
	// it takes no job until it has repaired itself.
	WorkerUnhealthy = "unhealthy"
	WorkerLost      = "lost"
)

// File is one source file of a submission.
type File struct {
	Name     string `json:"name"`
	Content  string `json:"content"`
	Encoding string `json:"encoding,omitempty"`
}

// Limits bound one run of a program. Zero means the operator's default.
type Limits struct {
	CPUMs     int64 `json:"cpu_ms,omitempty"`
	WallMs    int64 `json:"wall_ms,omitempty"`
	MemoryMB  int64 `json:"memory_mb,omitempty"`
	Processes int64 `json:"processes,omitempty"`
	OutputKB  int64 `json:"output_kb,omitempty"`
	// TotalOutputKB is the whole job's output budget: compile output and
	// both streams of every run and test together. Past it the job stops
	// with the verdict output_limit. Default 8 MiB, at most 32 MiB (the
	// operator may lower both).
	TotalOutputKB int64 `json:"total_output_kb,omitempty"`
}

// TestCase is one input of a job with several tests: the program is compiled
// once and run once per test case.
type TestCase struct {
	Stdin          string  `json:"stdin"`
	StdinEncoding  string  `json:"stdin_encoding,omitempty"`
	ExpectedOutput *string `json:"expected_output,omitempty"`
}

// JobRequest is the body of POST /api/v1/jobs.
type JobRequest struct {
	Language       string            `json:"language"`
	Version        string            `json:"version,omitempty"`
	Source         string            `json:"source,omitempty"`
	Files          []File            `json:"files,omitempty"`
	Stdin          string            `json:"stdin,omitempty"`
	StdinEncoding  string            `json:"stdin_encoding,omitempty"`
	Args           []string          `json:"args,omitempty"`
	CompileArgs    []string          `json:"compile_args,omitempty"`
	Limits         Limits            `json:"limits"`
	ExpectedOutput *string           `json:"expected_output,omitempty"`
	Tests          []TestCase        `json:"tests,omitempty"`
	StopOnFailure  bool              `json:"stop_on_failure,omitempty"`
	Priority       int               `json:"priority,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	MaxAttempts    int               `json:"max_attempts,omitempty"`
	// Interactive: the program's stdin comes from a client attached at
	// GET /api/v1/jobs/{id}/attach (a WebSocket), not from stdin. The job
	// starts once attached, must start within the placement timeout, has
	// no test cases, and is never run twice.
	Interactive bool `json:"interactive,omitempty"`
	// CallbackURL, if set, receives the finished job (POST, signed:
	// see Callback).
	CallbackURL string `json:"callback_url,omitempty"`
}

// Compile is the outcome of the compile step.
type Compile struct {
	ExitCode       int    `json:"exit_code"`
	Stdout         string `json:"stdout"`
	StdoutEncoding string `json:"stdout_encoding,omitempty"`
	Stderr         string `json:"stderr"`
	StderrEncoding string `json:"stderr_encoding,omitempty"`
	WallMs         int64  `json:"wall_ms"`
	Cached         bool   `json:"cached"`
}

// Run is the outcome of one run of the program.
type Run struct {
	ExitCode       int    `json:"exit_code"`
	Signal         string `json:"signal"`
	Stdout         string `json:"stdout"`
	StdoutEncoding string `json:"stdout_encoding,omitempty"`
	Stderr         string `json:"stderr"`
	StderrEncoding string `json:"stderr_encoding,omitempty"`
	CPUMs          int64  `json:"cpu_ms"`
	WallMs         int64  `json:"wall_ms"`
	MemoryKB       int64  `json:"memory_kb"`
	// OutputTruncated says stdout or stderr hit the output cap.
	OutputTruncated bool `json:"output_truncated,omitempty"`
}

// TestResult is the outcome of one test case.
type TestResult struct {
	Verdict string `json:"verdict"`
	Run
}

// Job is a submitted program and, once it has run, its result.
type Job struct {
	ID          string            `json:"id"`
	Owner       string            `json:"owner"`
	Language    string            `json:"language"`
	Version     string            `json:"version"`
	Status      string            `json:"status"`
	Verdict     string            `json:"verdict,omitempty"`
	Error       string            `json:"error,omitempty"`
	Attempts    int               `json:"attempts"`
	MaxAttempts int               `json:"max_attempts"`
	Worker      string            `json:"worker,omitempty"`
	Priority    int               `json:"priority"`
	Labels      map[string]string `json:"labels,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	StartedAt   *time.Time        `json:"started_at,omitempty"`
	FinishedAt  *time.Time        `json:"finished_at,omitempty"`
	// QueuePosition is the job's place in its owner's queue while queued (1 is next).
	QueuePosition int          `json:"queue_position,omitempty"`
	Compile       *Compile     `json:"compile,omitempty"`
	Run           *Run         `json:"run,omitempty"`
	Tests         []TestResult `json:"tests,omitempty"`
	// Request is the submission, returned by GET /api/v1/jobs/{id} so a client can re-run it.
	Request *JobRequest `json:"request,omitempty"`
	// Interactive: see JobRequest.Interactive.
	Interactive bool `json:"interactive,omitempty"`
	// Callback is the delivery of the job's callback_url, if it has one
	// (GET /api/v1/jobs/{id}).
	Callback *Callback `json:"callback,omitempty"`
}

// Terminal reports whether the job will not change any more.
func (j *Job) Terminal() bool {
	return j.Status == StatusDone || j.Status == StatusCancelled || j.Status == StatusFailed
}

// JobList is the body of GET /api/v1/jobs.
type JobList struct {
	Jobs []Job `json:"jobs"`
	// Next, when set, is the cursor of the next (older) page: pass it as
	// ?before= with the same filters. Empty on the last page.
	Next string `json:"next,omitempty"`
}

// Share is a job's read-only link (POST and GET /api/v1/jobs/{id}/share).
// Token and URL are given once, when the link is made: only the token's
// hash is kept, so a lost link is replaced by a new one, not recovered.
type Share struct {
	Shared    bool       `json:"shared"`
	Token     string     `json:"token,omitempty"`
	URL       string     `json:"url,omitempty"` // path of the read-only page, /shared/TOKEN
	CreatedAt *time.Time `json:"created_at,omitempty"`
}

// LimitRange is what a submission's limits may be: the defaults applied
// to fields left out, and the maxima a larger value is refused over (a
// zero maximum: no maximum).
type LimitRange struct {
	Default Limits `json:"default"`
	Max     Limits `json:"max"`
}

// Language is one language the connected workers can run.
type Language struct {
	Name     string   `json:"name"`
	Version  string   `json:"version"`
	Versions []string `json:"versions,omitempty"`
	Workers  int      `json:"workers"`
}

// LanguageList is the body of GET /api/v1/languages.
type LanguageList struct {
	Languages []Language `json:"languages"`
	// Limits are the cluster's default and maximum limits, for a form to
	// show before anything is submitted.
	Limits *LimitRange `json:"limits,omitempty"`
}

// WorkerLanguage is one language a worker runs.
type WorkerLanguage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Worker is one worker as the master sees it.
type Worker struct {
	Name          string            `json:"name"`
	Address       string            `json:"address"`
	Status        string            `json:"status"`
	Languages     []WorkerLanguage  `json:"languages"`
	Labels        map[string]string `json:"labels"`
	Slots         int               `json:"slots"`
	Running       int               `json:"running"`
	CPUPercent    float64           `json:"cpu_percent"`
	MemoryPercent float64           `json:"memory_percent"`
	JobsDone      int64             `json:"jobs_done"`
	LastHeartbeat time.Time         `json:"last_heartbeat"`
	ConnectedAt   time.Time         `json:"connected_at"`
	Sandbox       string            `json:"sandbox"`
	Version       string            `json:"version,omitempty"`
	// InfraFailures counts the attempts the worker gave back because its
	// own machinery failed (as it reports it, since it started).
	InfraFailures int64 `json:"infra_failures"`
	// Health is the worker's last infrastructure error, for operators;
	// empty while all is well.
	Health string `json:"health,omitempty"`
	// JobsFailed counts the jobs whose attempt on this worker ended in
	// failure (status failed: the worker could not run them) or that it
	// gave back because its own machinery failed, as the master holding
	// its link counted them since the worker connected there;
	// FailureRate is JobsFailed over every attempt it ended.
	JobsFailed  int64   `json:"jobs_failed"`
	FailureRate float64 `json:"failure_rate"`
	// LastError is the error of its last failed job, and when it came.
	LastError   string     `json:"last_error,omitempty"`
	LastErrorAt *time.Time `json:"last_error_at,omitempty"`
	// StartedBy is set for a worker the autoscaler started: which
	// provisioner, and why.
	StartedBy *WorkerOrigin `json:"started_by,omitempty"`
}

// WorkerOrigin says who started a worker and why.
type WorkerOrigin struct {
	Provisioner string    `json:"provisioner"` // "local" or "exec"
	Reason      string    `json:"reason"`
	StartedAt   time.Time `json:"started_at"`
}

// WorkerList is the body of GET /api/v1/workers.
type WorkerList struct {
	Workers []Worker `json:"workers"`
}

// Cluster is the body of GET /api/v1/cluster.
type Cluster struct {
	Workers    map[string]int `json:"workers"`
	Jobs       map[string]int `json:"jobs"`
	Clients    int            `json:"clients"`
	Slots      int            `json:"slots"`
	SlotsInUse int            `json:"slots_in_use"`
	QueueDepth int            `json:"queue_depth"`
}

// LoginRequest is the body of POST /api/v1/login.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// LoginResponse is the answer to POST /api/v1/login.
type LoginResponse struct {
	Token string `json:"token"`
	// ExpiresAt is when the token stops being valid (a login token
	// expires; a password change also revokes it).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Event is one Server-Sent Event of GET /api/v1/jobs/{id}/events. Type is
// "state" (Job is set), "output" (Stream and Data are set) or "end".
// An output event also says which attempt wrote it and where its bytes
// start in that attempt's output (all streams together): the SSE id of an
// event is "ATTEMPT:END", and a stream resumed with that Last-Event-ID,
// on any master, starts after it.
type Event struct {
	Type     string `json:"type"`
	Job      *Job   `json:"job,omitempty"`
	Stream   string `json:"stream,omitempty"`
	Data     string `json:"data,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Attempt  int32  `json:"attempt,omitempty"`
	Offset   int64  `json:"offset,omitempty"`
}

// Error codes of ErrorBody.
const (
	CodeBadRequest      = "bad_request"
	CodeInvalidJSON     = "invalid_json"
	CodeTooLarge        = "too_large"
	CodeUnauthorized    = "unauthorized"
	CodeForbidden       = "forbidden"
	CodeNotFound        = "not_found"
	CodeConflict        = "conflict"
	CodeUnknownLanguage = "unknown_language"
	CodeInvalid         = "invalid"
	CodeRateLimited     = "rate_limited"
	CodeUnavailable     = "unavailable"
	CodeInternal        = "internal"
)

// ErrorBody is the body of every 4xx and 5xx answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong.
type ErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// User is one account, as listed by GET /api/v1/users.
type User struct {
	Username  string    `json:"username"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

// UserList is the body of GET /api/v1/users.
type UserList struct {
	Users []User `json:"users"`
}

// UserRequest is the body of POST /api/v1/users (admin only). Role is
// RoleUser or RoleAdmin; empty means RoleUser.
type UserRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	Role     string `json:"role,omitempty"`
}

// PasswordRequest is the body of PUT /api/v1/users/{name}/password: an
// admin sets anyone's password, a user their own.
type PasswordRequest struct {
	Password string `json:"password"`
	// CurrentPassword, if given, must be the user's password now. A web
	// session (the session cookie) changing its own user's password must
	// give it: a browser left open is not a way to take the account.
	CurrentPassword string `json:"current_password,omitempty"`
}

// TokenSessionRequest is the body of POST /api/v1/session/token: a
// one-time sign-in link's secret (what follows #/signin/ in the link
// `grappe up` prints) or an API token, exchanged for a web session.
type TokenSessionRequest struct {
	Token string `json:"token"`
}

// Account is the body of GET /api/v1/account: who the caller is and what
// they may use.
type Account struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	// MaxQueuedJobs is how many jobs of the user may wait at once.
	MaxQueuedJobs int `json:"max_queued_jobs"`
	// RequestsPerSecond and Burst bound the user's API requests.
	RequestsPerSecond float64 `json:"requests_per_second"`
	Burst             int     `json:"burst"`
	// DefaultLimits are a job's limits when it sets none; MaxLimits the
	// most a job may ask for.
	DefaultLimits Limits `json:"default_limits"`
	MaxLimits     Limits `json:"max_limits"`
	// The user's jobs now.
	JobsQueued  int `json:"jobs_queued"`
	JobsRunning int `json:"jobs_running"`
	JobsTotal   int `json:"jobs_total"`
}

// AuditEntry is one entry of the audit log: who did what to what.
type AuditEntry struct {
	Seq    int64     `json:"seq"`
	Time   time.Time `json:"time"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Target string    `json:"target,omitempty"`
	Detail string    `json:"detail,omitempty"`
	Addr   string    `json:"addr,omitempty"`
}

// AuditList is the body of GET /api/v1/audit, newest first. NextBefore,
// when set, is the before= of the next page.
type AuditList struct {
	Entries    []AuditEntry `json:"entries"`
	NextBefore int64        `json:"next_before,omitempty"`
}

// Session is the answer to POST and GET /api/v1/session: who is logged in
// and the CSRF token that the web UI echoes in X-CSRF-Token.
type Session struct {
	Username  string `json:"username"`
	Role      string `json:"role"`
	CSRFToken string `json:"csrf_token"`
}

// Client is one API client seen recently, for the dashboard.
type Client struct {
	User        string    `json:"user"`
	Address     string    `json:"address"`
	Since       time.Time `json:"since"`
	LastSeen    time.Time `json:"last_seen"`
	Requests    int64     `json:"requests"`
	JobsTotal   int       `json:"jobs_total"`
	JobsRunning int       `json:"jobs_running"`
	JobsQueued  int       `json:"jobs_queued"`
}

// ClientList is the body of GET /api/v1/clients.
type ClientList struct {
	Clients []Client `json:"clients"`
}

// StatsPoint is one interval of GET /api/v1/stats.
type StatsPoint struct {
	Time        time.Time `json:"time"`
	QueueDepth  int       `json:"queue_depth"`
	Running     int       `json:"running"`
	Completed   int       `json:"completed"`
	Submitted   int       `json:"submitted"`
	QueueWaitMs float64   `json:"queue_wait_ms"` // mean wait of the jobs started in the interval
}

// Stats is the body of GET /api/v1/stats: the last minutes of the cluster,
// oldest first, one point per IntervalSeconds.
type Stats struct {
	IntervalSeconds int          `json:"interval_seconds"`
	Points          []StatsPoint `json:"points"`
}

// WorkerIdentity is a worker certificate the master issued, as listed by
// GET /api/v1/worker-identities.
type WorkerIdentity struct {
	Name      string     `json:"name"`
	Serial    string     `json:"serial"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// WorkerIdentityList is the body of GET /api/v1/worker-identities.
type WorkerIdentityList struct {
	Identities []WorkerIdentity `json:"identities"`
}

// JoinToken is the answer to POST /api/v1/join-token/rotate.
type JoinToken struct {
	JoinToken string `json:"join_token"`
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name string `json:"name"`
	// ExpiresAt, if set, is when the token stops being valid; without it
	// the token is valid until revoked.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
}

// Token kinds, in APIToken.Kind.
const (
	// TokenKindAPI is a token made on purpose (POST /api/v1/tokens, the
	// admin-token file): valid until revoked or its expires_at.
	TokenKindAPI = "api"
	// TokenKindLogin is a token a password login made (POST
	// /api/v1/login, the web UI): it expires, and a password change
	// revokes it.
	TokenKindLogin = "login"
)

// APIToken is one API token of the caller. Token (the secret) is only in
// the answer to its creation: the master keeps only its hash.
type APIToken struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Kind      string     `json:"kind"` // TokenKindAPI or TokenKindLogin
	Token     string     `json:"token,omitempty"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"` // absent: never expires
}

// APITokenList is the body of GET /api/v1/tokens.
type APITokenList struct {
	Tokens []APIToken `json:"tokens"`
}

// Autoscaler is the body of GET /api/v1/autoscaler (admin): the policy,
// how many started workers it wants and has, the workers it started and
// its recent decisions.
type Autoscaler struct {
	Enabled     bool             `json:"enabled"`
	Provisioner string           `json:"provisioner,omitempty"`
	Policy      *AutoscalePolicy `json:"policy,omitempty"`
	// Desired is how many started workers the policy wants; Actual how
	// many are connected and taking jobs.
	Desired int `json:"desired"`
	Actual  int `json:"actual"`
	// Languages are what started workers run, as configured or learned;
	// empty until one has joined.
	Languages []string `json:"languages,omitempty"`
	// Held says why a scale-up the load asks for is not happening.
	Held          string              `json:"held,omitempty"`
	StartFailures int                 `json:"start_failures"`
	BackoffUntil  *time.Time          `json:"backoff_until,omitempty"`
	Workers       []AutoscaledWorker  `json:"workers"`
	Decisions     []AutoscaleDecision `json:"decisions"` // newest first
}

// AutoscalePolicy is the autoscaler's policy; durations in milliseconds.
type AutoscalePolicy struct {
	Min                int      `json:"min"`
	Max                int      `json:"max"`
	MaxJobs            int      `json:"max_jobs"` // slots of a started worker
	WaitMs             int64    `json:"wait_ms"`
	BacklogMs          int64    `json:"backlog_ms"`
	IdleMs             int64    `json:"idle_ms"`
	UpCooldownMs       int64    `json:"up_cooldown_ms"`
	DownCooldownMs     int64    `json:"down_cooldown_ms"`
	MaxStartsPerMinute int      `json:"max_starts_per_minute"`
	JoinTimeoutMs      int64    `json:"join_timeout_ms"`
	Languages          []string `json:"languages,omitempty"`
}

// AutoscaledWorker is a worker the autoscaler started. Phase is starting,
// up, draining or stopping; State is its provisioner's view: running,
// restarting (it died and is restarted after a backoff) or failed.
type AutoscaledWorker struct {
	Name      string     `json:"name"`
	Phase     string     `json:"phase"`
	State     string     `json:"state,omitempty"`
	Reason    string     `json:"reason"`
	StartedAt time.Time  `json:"started_at"`
	IdleSince *time.Time `json:"idle_since,omitempty"`
	Restarts  int        `json:"restarts"`
	PID       int        `json:"pid,omitempty"`
	Log       string     `json:"log,omitempty"`
	Error     string     `json:"error,omitempty"`
}

// AutoscaleDecision is one decision of the autoscaler. Action is start,
// drain, undrain, stop, fail (a start failed) or hold (a scale-up the load
// asks for and the policy holds back, with why).
type AutoscaleDecision struct {
	Time   time.Time `json:"time"`
	Action string    `json:"action"`
	Worker string    `json:"worker,omitempty"`
	Reason string    `json:"reason"`
}

// AttachIn is a client's message on the WebSocket of
// GET /api/v1/jobs/{id}/attach: Type "stdin" (Data, in Encoding),
// "eof" (the end of input) or "signal" (Signal, "SIGINT", …).
type AttachIn struct {
	Type     string `json:"type"`
	Data     string `json:"data,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Signal   string `json:"signal,omitempty"`
}

// AttachOut is a server's message on the attach WebSocket: Type
// "attached" (Job, queued), "stage" (Stage), "output" (Stream, Data in
// Encoding), "exit" (the finished Job, its Status, Verdict, ExitCode,
// Signal, Error, and the output bytes Dropped because the client did not
// read them) or "error" (Message: a client message refused).
type AttachOut struct {
	Type     string `json:"type"`
	Job      *Job   `json:"job,omitempty"`
	Stage    string `json:"stage,omitempty"`
	Stream   string `json:"stream,omitempty"`
	Data     string `json:"data,omitempty"`
	Encoding string `json:"encoding,omitempty"`
	Status   string `json:"status,omitempty"`
	Verdict  string `json:"verdict,omitempty"`
	ExitCode *int   `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`
	Error    string `json:"error,omitempty"`
	Dropped  int64  `json:"dropped,omitempty"`
	Message  string `json:"message,omitempty"`
}
