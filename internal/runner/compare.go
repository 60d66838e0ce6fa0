package runner

import "bytes"

// EqualOutput reports whether a program's output matches the expected
// output, the way judges usually compare:
//
//   - whitespace at the end of each line (spaces, tabs, '\r', '\v', '\f')
//     is ignored, so "\r\n" line ends match "\n";
//   - newlines (and blank lines) at the very end are ignored, so a missing
//     or extra final newline does not matter;
//   - everything else must match byte for byte: leading whitespace, blank
//     lines in the middle, letter case.
func EqualOutput(got, want []byte) bool {
	return bytes.Equal(normalize(got), normalize(want))
}

const trailingSpace = " \t\r\v\f"

func normalize(b []byte) []byte {
	lines := bytes.Split(b, []byte("\n"))
	for i, l := range lines {
		lines[i] = bytes.TrimRight(l, trailingSpace)
	}
	for len(lines) > 0 && len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return bytes.Join(lines, []byte("\n"))
}
