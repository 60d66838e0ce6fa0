package jobspec

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"unicode/utf8"
)

// ErrInvalid marks a job that breaks one of the rules (errors.Is holds for
// every *Error). The master answers it with 422; the runner with
// runner.ErrBadSpec.
var ErrInvalid = errors.New("invalid job")

// Error is a broken rule: the part of the job at fault, if known, and why.
// Messages never hold a host path.
type Error struct {
	Field   string // "compile_args[2]"; empty when the caller knows it
	Message string
}

func (e *Error) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Is makes every *Error an ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// MaxFileName bounds a file name, the whole slash-separated path.
const MaxFileName = 255

// CheckFileName checks a job's file name: a clean relative slash-separated
// UTF-8 path that stays inside the work directory. Sub-directories
// ("pkg/util.c") are fine; empty, absolute and ".." names, empty, "." and
// ".." components, backslashes, NUL and control characters are not, nor a
// component starting with "-": {src} hands names to compilers, which would
// read "-x.c" as an option.
func CheckFileName(name string) error {
	bad := func(why string) error {
		return &Error{Message: fmt.Sprintf("file name %q %s", name, why)}
	}
	switch {
	case name == "":
		return bad("must not be empty")
	case len(name) > MaxFileName:
		return bad(fmt.Sprintf("is longer than %d bytes", MaxFileName))
	case !utf8.ValidString(name):
		return bad("must be UTF-8")
	case strings.HasPrefix(name, "/"):
		return bad("must be relative")
	case strings.Contains(name, "\\"):
		return bad("must use / as separator")
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f {
			return bad("must not contain control characters")
		}
	}
	for _, part := range strings.Split(name, "/") {
		switch {
		case part == "" || part == "." || part == "..":
			return bad("must not contain empty, . or .. components")
		case strings.HasPrefix(part, "-"):
			return bad("must not have a component starting with '-'")
		}
	}
	if path.Clean(name) != name || !fs.ValidPath(name) {
		return bad("must be a clean relative path")
	}
	return nil
}
