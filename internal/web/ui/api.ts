// The REST API as the UI uses it (types mirror api/types.go). The browser
// authenticates with the HttpOnly session cookie set by POST
// /api/v1/session; the UI never sees the token. Requests that change state
// echo the CSRF token in X-CSRF-Token, as the API demands of cookie
// sessions.

export interface Session { username: string; role: string; csrf_token: string }

export interface Limits {
  cpu_ms?: number; wall_ms?: number; memory_mb?: number; processes?: number; output_kb?: number; total_output_kb?: number;
}
/** GET /api/v1/languages: the languages, and the cluster's default and maximum limits. */
export interface LanguageList { languages: Language[]; limits?: { default: Limits; max: Limits } }
/** A job's read-only link: token and url only in the answer that made it. */
export interface Share { shared: boolean; token?: string; url?: string; created_at?: string }
/** GET /api/v1/jobs: a page of jobs, and the cursor of the next (older) one. */
export interface JobList { jobs: Job[]; next?: string }
export interface FileIn { name: string; content: string; encoding?: string }
export interface TestCase { stdin: string; stdin_encoding?: string; expected_output?: string | null }

export interface JobRequest {
  language: string;
  version?: string;
  source?: string;
  files?: FileIn[];
  stdin?: string;
  stdin_encoding?: string;
  args?: string[];
  compile_args?: string[];
  limits: Limits;
  expected_output?: string | null;
  tests?: TestCase[];
  stop_on_failure?: boolean;
  priority?: number;
  labels?: Record<string, string>;
  max_attempts?: number;
  /** stdin comes from a client attached at /api/v1/jobs/{id}/attach (ui/terminal.ts). */
  interactive?: boolean;
}

export interface Compile {
  exit_code: number; stdout: string; stdout_encoding?: string; stderr: string; stderr_encoding?: string;
  wall_ms: number; cached: boolean;
}
export interface Run {
  exit_code: number; signal: string; stdout: string; stdout_encoding?: string; stderr: string; stderr_encoding?: string;
  cpu_ms: number; wall_ms: number; memory_kb: number; output_truncated?: boolean;
}
export interface TestResult extends Run { verdict: string }

export interface Job {
  id: string; owner: string; language: string; version: string;
  status: 'queued' | 'running' | 'done' | 'cancelled' | 'failed';
  verdict?: string; error?: string; attempts: number; max_attempts: number; worker?: string;
  priority: number; created_at: string; started_at?: string; finished_at?: string;
  queue_position?: number; compile?: Compile; run?: Run; tests?: TestResult[]; request?: JobRequest;
  interactive?: boolean;
}

export interface Language { name: string; version: string; versions?: string[]; workers: number }
export interface Worker {
  name: string; address: string; status: 'up' | 'draining' | 'unhealthy' | 'lost';
  languages: { name: string; version: string }[]; labels: Record<string, string> | null;
  slots: number; running: number; cpu_percent: number; memory_percent: number; jobs_done: number;
  last_heartbeat: string; connected_at: string; sandbox: string; version?: string;
  /** Attempts the worker gave back because its own machinery (sandbox, cgroups) failed. */
  infra_failures?: number;
  /** The worker's last infrastructure error, for operators; empty while all is well. */
  health?: string;
  /** Set for a worker the autoscaler started. */
  started_by?: WorkerOrigin;
  /** Jobs that failed there (status failed, or given back for its machinery), since it connected. */
  jobs_failed?: number;
  /** jobs_failed over the attempts it ended, 0 to 1. */
  failure_rate?: number;
  last_error?: string;
  last_error_at?: string;
}
export interface WorkerOrigin { provisioner: string; reason: string; started_at: string }
export interface Cluster {
  workers: Record<string, number>; jobs: Record<string, number>; clients: number;
  slots: number; slots_in_use: number; queue_depth: number;
}
export interface Client {
  user: string; address: string; since: string; last_seen: string; requests: number;
  jobs_total: number; jobs_running: number; jobs_queued: number;
}
/** GET /api/v1/autoscaler (admin). enabled is false when the master runs without --autoscale. */
export interface Autoscaler {
  enabled: boolean; provisioner?: string; policy?: AutoscalePolicy;
  desired: number; actual: number; languages?: string[];
  held?: string; start_failures: number; backoff_until?: string;
  workers: AutoscaledWorker[] | null; decisions: AutoscaleDecision[] | null; // decisions newest first
}
export interface AutoscalePolicy {
  min: number; max: number; max_jobs: number; wait_ms: number; backlog_ms: number; idle_ms: number;
  up_cooldown_ms: number; down_cooldown_ms: number; max_starts_per_minute: number; join_timeout_ms: number;
  languages?: string[];
}
export interface AutoscaledWorker {
  name: string; phase: 'starting' | 'up' | 'draining' | 'stopping' | string; state?: string; reason: string;
  started_at: string; idle_since?: string; restarts: number; pid?: number; log?: string; error?: string;
}
export interface AutoscaleDecision { time: string; action: string; worker?: string; reason: string }
export interface StatsPoint { time: string; queue_depth: number; running: number; completed: number; submitted: number; queue_wait_ms: number }
export interface Stats { interval_seconds: number; points: StatsPoint[] }

/** GET /api/v1/account: who the caller is, and their quotas. */
export interface Account {
  username: string; role: string; max_queued_jobs: number; requests_per_second: number; burst: number;
  default_limits: Limits; max_limits: Limits; jobs_queued: number; jobs_running: number; jobs_total: number;
}
export interface User { username: string; role: string; created_at: string }
export interface APIToken { id: string; name: string; kind: string; created_at: string; expires_at?: string; token?: string }
export interface AuditEntry { seq: number; time: string; actor: string; action: string; target?: string; detail?: string; addr?: string }
export interface AuditList { entries: AuditEntry[]; next_before?: number }

/** An API failure. status 0 means the master could not be reached. */
export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
  }
}

let csrf = '';
let onUnauthorized: () => void = () => {};
let onUnreachable: () => void = () => {};

export function setCSRF(token: string): void { csrf = token; }

/** Registers what to do when the session is gone (revoked, expired). */
export function handleUnauthorized(f: () => void): void { onUnauthorized = f; }

/** Registers what to do when a request could not reach the master. */
export function handleUnreachable(f: () => void): void { onUnreachable = f; }

function csrfToken(): string {
  if (csrf) return csrf;
  // After a reload the token is in the readable grappe_csrf cookie.
  const m = document.cookie.match(/(?:^|;\s*)grappe_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : '';
}

export async function api<T>(method: string, path: string, body?: unknown, opts: { quiet401?: boolean } = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD') headers['X-CSRF-Token'] = csrfToken();
  let resp: Response;
  try {
    resp = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    onUnreachable();
    throw new ApiError(0, 'unreachable', 'the master cannot be reached');
  }
  if (resp.status === 204) return undefined as T;
  let data: any = null;
  try {
    data = await resp.json();
  } catch {
    // Not JSON: a proxy's error page, or a body cut short by a master
    // going down. Callers expect an object, so this is an error too.
    if (resp.ok) throw new ApiError(0, 'unreadable', 'the master\'s answer was cut short');
  }
  if (!resp.ok) {
    const e = data?.error;
    const err = new ApiError(resp.status, e?.code ?? 'http_' + resp.status, e?.message ?? `${resp.status} ${resp.statusText}`);
    if (resp.status === 401 && !opts.quiet401) onUnauthorized();
    throw err;
  }
  return data as T;
}

export const get = <T>(path: string) => api<T>('GET', path);
export const post = <T>(path: string, body?: unknown) => api<T>('POST', path, body);
export const put = <T>(path: string, body?: unknown) => api<T>('PUT', path, body);
export const del = <T>(path: string) => api<T>('DELETE', path);

export function isTerminal(j: Job): boolean {
  return j.status === 'done' || j.status === 'cancelled' || j.status === 'failed';
}

/** Decodes API text that may be base64 (non-UTF-8 output) for display. */
export function text(s: string | undefined, encoding: string | undefined): string {
  if (!s) return '';
  if (encoding !== 'base64') return s;
  try {
    const bytes = Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
    return new TextDecoder('utf-8', { fatal: false }).decode(bytes);
  } catch {
    return s;
  }
}

/** Length in bytes of API text, for notes such as "binary output, 312 bytes". */
export function byteLength(s: string | undefined, encoding: string | undefined): number {
  if (!s) return 0;
  if (encoding === 'base64') return Math.floor((s.replace(/=+$/, '').length * 3) / 4);
  return new TextEncoder().encode(s).length;
}
