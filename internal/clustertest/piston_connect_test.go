package clustertest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/grappe/grappe/internal/clustertest"
)

// TestPistonConnect drives Piston's interactive WebSocket as Piston's
// clients do, and each of its refusals by its close code.
func TestPistonConnect(t *testing.T) {
	c := clustertest.Start(t, clustertest.Options{Workers: []clustertest.WorkerOptions{{Name: "w1", Slots: 2}}})
	c.WaitLanguage("python")
	connect := func(t *testing.T) *wsConn {
		t.Helper()
		ws, _, err := dialWS(t, c, "/api/v2/connect", c.Token)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		return ws
	}
	initMsg := map[string]any{
		"type": "init", "language": "python", "version": "*",
		"files": []map[string]string{{"name": "main.py", "content": greeter}},
	}

	t.Run("init, data, exit", func(t *testing.T) {
		ws := connect(t)
		ws.send(initMsg)
		rt, _ := ws.until("runtime", 10*time.Second)
		if rt["language"] != "python" || rt["version"] == "" {
			t.Fatalf("runtime %v", rt)
		}
		if st, _ := ws.until("stage", 30*time.Second); st["stage"] != "run" {
			t.Fatalf("stage %v", st)
		}
		prompt := ""
		for !strings.Contains(prompt, "What is your name? ") {
			m, _ := ws.until("data", 30*time.Second)
			if m["stream"] != "stdout" {
				t.Fatalf("data %v", m)
			}
			prompt += m["data"].(string)
		}
		ws.send(map[string]string{"type": "data", "stream": "stdin", "data": "Grace\n"})
		exit, out := ws.until("exit", 30*time.Second)
		if !strings.Contains(out, "Hello, Grace!") || exit["stage"] != "run" || exit["code"] != 0.0 || exit["signal"] != nil {
			t.Fatalf("output %q, exit %v", out, exit)
		}
		if code, reason := ws.closeCode(10 * time.Second); code != 4999 || reason != "Job Completed" {
			t.Fatalf("close %d %q, want 4999 Job Completed", code, reason)
		}
	})

	t.Run("a compile error", func(t *testing.T) {
		c.WaitLanguage("c")
		ws := connect(t)
		ws.send(map[string]any{
			"type": "init", "language": "c", "version": "*",
			"files": []map[string]string{{"name": "main.c", "content": "int main(void) { return undeclared; }\n"}},
		})
		if st, _ := ws.until("stage", 30*time.Second); st["stage"] != "compile" {
			t.Fatalf("stage %v", st)
		}
		exit, out := ws.until("exit", 60*time.Second)
		if exit["stage"] != "compile" || exit["code"] == 0.0 || !strings.Contains(out, "undeclared") {
			t.Fatalf("exit %v after %q: want the compiler's complaint", exit, out)
		}
		if code, _ := ws.closeCode(10 * time.Second); code != 4999 {
			t.Fatalf("close %d", code)
		}
	})

	closes := []struct {
		name   string
		send   []any
		code   websocket.StatusCode
		reason string
	}{
		{"data before init", []any{map[string]string{"type": "data", "stream": "stdin", "data": "x"}}, 4003, "Not yet initialized"},
		{"no init", nil, 4001, "Initialization Timeout"},
		{"init twice", []any{initMsg, initMsg}, 4000, "Already Initialized"},
		{"write to stdout", []any{initMsg, map[string]string{"type": "data", "stream": "stdout", "data": "x"}}, 4004, "Can only write to stdin"},
		{"invalid signal", []any{initMsg, map[string]string{"type": "signal", "signal": "SIGNOPE"}}, 4005, "Invalid signal"},
		{"unknown runtime", []any{map[string]any{"type": "init", "language": "cobol-77", "version": "*", "files": []map[string]string{{"content": "x"}}}}, 4002, "Notified Error"},
	}
	for _, tc := range closes {
		t.Run(tc.name, func(t *testing.T) {
			ws := connect(t)
			for _, m := range tc.send {
				ws.send(m)
			}
			var notified string
			ws.onMessage = func(m map[string]any) {
				if m["type"] == "error" {
					notified, _ = m["message"].(string)
				}
			}
			code, reason := ws.closeCode(10 * time.Second)
			if code != tc.code || reason != tc.reason {
				t.Fatalf("close %d %q, want %d %q", code, reason, tc.code, tc.reason)
			}
			if tc.code == 4002 && !strings.Contains(notified, "cobol-77") {
				t.Fatalf("error message %q", notified)
			}
		})
	}
}
