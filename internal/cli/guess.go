package cli

import (
	"path/filepath"
	"strings"
)

// languageOf guesses a catalogue language name from a source file's
// extension, for grappe run and submit without --lang; "" when unknown.
// This is the one table of extensions on the client side.
func languageOf(file string) string {
	switch strings.ToLower(filepath.Ext(file)) {
	case ".py":
		return "python"
	case ".c":
		return "c"
	case ".cpp", ".cc", ".cxx":
		return "cpp"
	case ".java":
		return "java"
	case ".js":
		return "javascript"
	case ".go":
		return "go"
	case ".rs":
		return "rust"
	case ".sh":
		return "bash"
	}
	return ""
}
