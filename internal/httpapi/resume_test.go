package httpapi

import (
	"encoding/base64"
	"testing"

	"github.com/grappe/grappe/api"
)

func TestParseEventID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want streamPos
	}{
		{"", streamPos{}},
		{"2:150", streamPos{2, 150}},
		{" 1:0 ", streamPos{1, 0}},
		{"garbage", streamPos{}},
		{"1:-5", streamPos{}},
		{"-1:5", streamPos{}},
		{"99999999999:5", streamPos{}}, // not an attempt
		{"1:2:3", streamPos{}},
	} {
		if got := parseEventID(tc.in); got != tc.want {
			t.Errorf("parseEventID(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if id := (streamPos{3, 42}).id(); id != "3:42" || parseEventID(id) != (streamPos{3, 42}) {
		t.Errorf("id %q does not round-trip", id)
	}
}

// A resumed stream gets only the output it does not have.
func TestStreamPosNext(t *testing.T) {
	out := func(attempt int32, offset int64, data string) api.Event {
		return api.Event{Type: "output", Stream: "stdout", Data: data, Attempt: attempt, Offset: offset}
	}
	b64 := func(attempt int32, offset int64, data []byte) api.Event {
		return api.Event{Type: "output", Stream: "stdout", Data: base64.StdEncoding.EncodeToString(data),
			Encoding: api.EncodingBase64, Attempt: attempt, Offset: offset}
	}
	for _, tc := range []struct {
		name     string
		pos      streamPos
		ev       api.Event
		wantOK   bool
		wantData string
		wantPos  streamPos
	}{
		{"fresh stream", streamPos{}, out(1, 0, "hello"), true, "hello", streamPos{1, 5}},
		{"already sent", streamPos{1, 10}, out(1, 5, "world"), false, "", streamPos{1, 10}},
		{"sent in part", streamPos{1, 7}, out(1, 5, "world"), true, "rld", streamPos{1, 10}},
		{"after", streamPos{1, 10}, out(1, 10, "!"), true, "!", streamPos{1, 11}},
		{"a gap (chunks dropped)", streamPos{1, 10}, out(1, 20, "x"), true, "x", streamPos{1, 21}},
		{"a new attempt starts over", streamPos{1, 500}, out(2, 0, "again"), true, "again", streamPos{2, 5}},
		{"an earlier attempt", streamPos{2, 0}, out(1, 900, "late"), false, "", streamPos{2, 0}},
		{"never half a character", streamPos{1, 1}, out(1, 0, "é!"), true, "!", streamPos{1, 3}},
		{"not numbered", streamPos{1, 10}, api.Event{Type: "output", Data: "x"}, true, "x", streamPos{1, 10}},
		{"binary cut", streamPos{1, 2}, b64(1, 0, []byte{0xff, 0xfe, 0xfd}), true,
			base64.StdEncoding.EncodeToString([]byte{0xfd}), streamPos{1, 3}},
	} {
		ev, pos, ok := tc.pos.next(tc.ev)
		if ok != tc.wantOK || pos != tc.wantPos || (ok && ev.Data != tc.wantData) {
			t.Errorf("%s: got %q %+v %v, want %q %+v %v", tc.name, ev.Data, pos, ok, tc.wantData, tc.wantPos, tc.wantOK)
		}
	}
}
