package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Environment variables read by FromEnv (part of grappe's external contract).
const (
	EnvAddr  = "GRAPPE_ADDR"  // the master's base URL
	EnvToken = "GRAPPE_TOKEN" // an API token
	EnvCA    = "GRAPPE_CA"    // a PEM file of the CA to trust
)

// FileConfig is the file written by grappe login.
type FileConfig struct {
	Addr  string `json:"addr"`
	Token string `json:"token"`
	CA    string `json:"ca,omitempty"` // path of the CA PEM file
}

// DefaultConfigPath returns $XDG_CONFIG_HOME/grappe/config.json, or
// ~/.config/grappe/config.json when XDG_CONFIG_HOME is not set.
func DefaultConfigPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) { // the XDG spec says to ignore relative paths
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("locate the config file: %w", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "grappe", "config.json"), nil
}

// ReadConfigFile reads a config file; a missing file is an empty config.
func ReadConfigFile(path string) (FileConfig, error) {
	var fc FileConfig
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fc, nil
	}
	if err != nil {
		return fc, fmt.Errorf("read config: %w", err)
	}
	if err := json.Unmarshal(b, &fc); err != nil {
		return fc, fmt.Errorf("config %s: %w", path, err)
	}
	return fc, nil
}

// WriteConfigFile writes fc to path with mode 0600 (it holds a token),
// creating its directory (0700) if needed. The file is replaced atomically.
func WriteConfigFile(path string, fc FileConfig) error {
	b, err := json.MarshalIndent(fc, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	f, err := os.CreateTemp(dir, ".config.json.tmp*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	// CreateTemp makes the file 0600 already; Chmod says so explicitly in
	// case a umask-less platform differs.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// FromEnv completes cfg the way the grappe command line does: each of Addr,
// Token and the CA left empty in cfg (the flags) is taken from GRAPPE_ADDR,
// GRAPPE_TOKEN and GRAPPE_CA, then from the file grappe login wrote.
func FromEnv(cfg Config) (Config, error) {
	path, err := DefaultConfigPath()
	if err != nil {
		path = "" // no home directory: flags and environment only
	}
	return Resolve(cfg, os.Getenv, path)
}

// Resolve is FromEnv with the environment lookup and the config file path
// given (path "" reads no file).
//
// The file's token and CA are used only for the master the file names:
// pointing --addr or GRAPPE_ADDR at another master must not send it the
// token of the one you logged in to.
func Resolve(cfg Config, getenv func(string) string, path string) (Config, error) {
	if cfg.Addr == "" {
		cfg.Addr = strings.TrimSpace(getenv(EnvAddr))
	}
	if cfg.Token == "" {
		cfg.Token = strings.TrimSpace(getenv(EnvToken))
	}
	hasCA := cfg.CAFile != "" || len(cfg.CAPEM) > 0 || cfg.HTTPClient != nil
	if !hasCA {
		if ca := strings.TrimSpace(getenv(EnvCA)); ca != "" {
			cfg.CAFile, hasCA = ca, true
		}
	}
	if path == "" || (cfg.Addr != "" && cfg.Token != "" && hasCA) {
		return cfg, nil
	}
	fc, err := ReadConfigFile(path)
	if err != nil {
		return cfg, err
	}
	if cfg.Addr == "" {
		cfg.Addr = fc.Addr
	}
	if !sameAddr(cfg.Addr, fc.Addr) {
		return cfg, nil
	}
	if cfg.Token == "" {
		cfg.Token = fc.Token
	}
	if !hasCA && fc.CA != "" {
		cfg.CAFile = fc.CA
	}
	return cfg, nil
}

// sameAddr reports whether two master addresses name the same master.
func sameAddr(a, b string) bool {
	if b == "" {
		return true
	}
	ua, err1 := ParseAddr(a)
	ub, err2 := ParseAddr(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return ua.Scheme == ub.Scheme && strings.EqualFold(ua.Host, ub.Host) && ua.Path == ub.Path
}
