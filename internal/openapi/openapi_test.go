package openapi

import (
	"strings"
	"testing"
)

func TestJSON(t *testing.T) {
	for _, tc := range []struct {
		yaml, json, err string
	}{
		{"a: 1\nb: [x, true]\n", `{"a":1,"b":["x",true]}`, ""},
		{"responses:\n  200: {description: ok}\n  '404': {}\n", `{"responses":{"200":{"description":"ok"},"404":{}}}`, ""},
		{"summary: 2026-01-02\n", "", "timestamp"},
		{"{1.5: x}\n", "", "not a string"},
		{"a: [\n", "", "openapi:"},
	} {
		got, err := JSON([]byte(tc.yaml))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("JSON(%q): %s, %v; want an error about %s", tc.yaml, got, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.json {
			t.Errorf("JSON(%q) = %s, %v; want %s", tc.yaml, got, err, tc.json)
		}
	}
}
