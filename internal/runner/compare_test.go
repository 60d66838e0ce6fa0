package runner

import "testing"

func TestEqualOutput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		got, want string
		equal     bool
	}{
		{"hello\n", "hello\n", true},
		{"hello", "hello\n", true},           // missing final newline
		{"hello\n\n\n", "hello", true},       // extra final newlines
		{"hello  \t\n", "hello\n", true},     // trailing spaces
		{"a\r\nb\r\n", "a\nb\n", true},       // CRLF
		{"a \nb\t\n", "a\nb", true},          // trailing whitespace on every line
		{"", "", true},                       // nothing
		{"\n\n", "", true},                   // only newlines
		{"  \n", "", true},                   // only whitespace
		{"hello", "Hello", false},            // case
		{" hello", "hello", false},           // leading whitespace
		{"a\n\nb", "a\nb", false},            // blank line in the middle
		{"a b", "a  b", false},               // inner whitespace
		{"1 2 3", "1 2 3 4", false},          // prefix
		{"", "x", false},                     // missing output
		{"x\ny", "x", false},                 // extra line
		{"\nhello", "hello", false},          // leading blank line
		{"h\u00e9llo\n", "h\u00e9llo", true}, // bytes beyond ASCII
	} {
		if got := EqualOutput([]byte(tt.got), []byte(tt.want)); got != tt.equal {
			t.Errorf("EqualOutput(%q, %q) = %v, want %v", tt.got, tt.want, got, tt.equal)
		}
	}
}
