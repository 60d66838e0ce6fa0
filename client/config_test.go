package client

import (
	"os"
	"path/filepath"
	"testing"
)

func TestConfigFile(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	path, err := DefaultConfigPath()
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(filepath.Dir(path)) != "grappe" || filepath.Base(path) != "config.json" {
		t.Errorf("path = %s", path)
	}
	if fc, err := ReadConfigFile(path); err != nil || fc != (FileConfig{}) {
		t.Fatalf("missing file: %+v, %v", fc, err)
	}
	want := FileConfig{Addr: "https://m:7443", Token: "t", CA: "/x/ca.pem"}
	if err := WriteConfigFile(path, want); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 600", fi.Mode().Perm())
	}
	got, err := ReadConfigFile(path)
	if err != nil || got != want {
		t.Errorf("read back %+v, %v", got, err)
	}

	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "/home/someone")
	if path, _ := DefaultConfigPath(); path != "/home/someone/.config/grappe/config.json" {
		t.Errorf("without XDG_CONFIG_HOME: %s", path)
	}
}

func TestResolve(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.json")
	file := FileConfig{Addr: "https://file:1", Token: "file-token", CA: "/file/ca.pem"}
	if err := WriteConfigFile(path, file); err != nil {
		t.Fatal(err)
	}
	env := func(m map[string]string) func(string) string {
		return func(k string) string { return m[k] }
	}
	fullEnv := env(map[string]string{EnvAddr: "https://env:2", EnvToken: "env-token", EnvCA: "/env/ca.pem"})
	tests := []struct {
		name   string
		flags  Config
		getenv func(string) string
		path   string
		want   Config
	}{
		{"file only", Config{}, env(nil), path,
			Config{Addr: "https://file:1", Token: "file-token", CAFile: "/file/ca.pem"}},
		{"env beats file", Config{}, fullEnv, path,
			Config{Addr: "https://env:2", Token: "env-token", CAFile: "/env/ca.pem"}},
		{"flags beat env", Config{Addr: "https://flag:3", Token: "flag-token", CAFile: "/flag/ca.pem"}, fullEnv, path,
			Config{Addr: "https://flag:3", Token: "flag-token", CAFile: "/flag/ca.pem"}},
		{"per field", Config{Token: "flag-token"}, env(map[string]string{EnvCA: "/env/ca.pem"}), path,
			Config{Addr: "https://file:1", Token: "flag-token", CAFile: "/env/ca.pem"}},
		{"file token kept for the same master", Config{Addr: "file:1/"}, env(nil), path,
			Config{Addr: "file:1/", Token: "file-token", CAFile: "/file/ca.pem"}},
		{"file token not sent to another master", Config{Addr: "https://other:9"}, env(nil), path,
			Config{Addr: "https://other:9"}},
		{"env addr elsewhere, no file token", Config{}, env(map[string]string{EnvAddr: "https://other:9"}), path,
			Config{Addr: "https://other:9"}},
		{"no file", Config{}, env(nil), "", Config{}},
		{"missing file", Config{}, env(nil), filepath.Join(t.TempDir(), "none.json"), Config{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.flags, tt.getenv, tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if got.Addr != tt.want.Addr || got.Token != tt.want.Token || got.CAFile != tt.want.CAFile {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}

	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	if _, err := Resolve(Config{}, env(nil), bad); err == nil {
		t.Error("a corrupt config file was accepted")
	}
	// A complete set of flags never reads the file, even a corrupt one.
	if _, err := Resolve(Config{Addr: "a", Token: "b", CAFile: "c"}, env(nil), bad); err != nil {
		t.Errorf("complete flags: %v", err)
	}
}
