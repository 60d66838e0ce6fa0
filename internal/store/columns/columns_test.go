package columns

import (
	"fmt"
	"testing"
	"time"
)

func TestRoundTrips(t *testing.T) {
	local := time.Date(2026, 12, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+2", 7200))
	for _, tc := range []struct {
		in   time.Time
		want time.Time
	}{{time.Time{}, time.Time{}}, {local, local.UTC()}} {
		if got := Time(Nanos(tc.in)); !got.Equal(tc.want) || got.Location() != tc.want.Location() {
			t.Errorf("Time(Nanos(%v)) = %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, m := range []map[string]string{nil, {}, {"gpu": "1", "zone": "a"}} {
		s, err := Labels(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseLabels(s)
		if err != nil || fmt.Sprint(back) != fmt.Sprint(m) && len(m) > 0 || len(m) == 0 && back != nil {
			t.Errorf("labels %v → %q → %v, %v", m, s, back, err)
		}
	}
	if s, _ := Labels(map[string]string{"b": "2", "a": "1"}); s != `{"a":"1","b":"2"}` {
		t.Errorf("labels not sorted: %s", s)
	}
	if _, err := ParseLabels("[1]"); err == nil {
		t.Error("ParseLabels of an array: no error")
	}
	if Blob(nil) == nil || len(Blob(nil)) != 0 {
		t.Error("Blob(nil) is nil")
	}
}
