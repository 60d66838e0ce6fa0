package callback_test

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/grappe/grappe/client"
	"github.com/grappe/grappe/internal/callback"
)

// TestSignVerify: what the master signs, the SDK's VerifyCallback accepts;
// a changed body, another secret or an old signature it refuses.
func TestSignVerify(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"id":"j1","status":"done"}`)
	h := callback.Sign([]byte("s3cret"), now, body)
	for _, tc := range []struct {
		name    string
		secret  string
		header  string
		body    []byte
		now     time.Time
		wantErr bool
	}{
		{"valid", "s3cret", h, body, now, false},
		{"valid a little later", "s3cret", h, body, now.Add(4 * time.Minute), false},
		{"replayed later", "s3cret", h, body, now.Add(6 * time.Minute), true},
		{"from the future", "s3cret", h, body, now.Add(-6 * time.Minute), true},
		{"other body", "s3cret", h, []byte(`{"id":"j1","status":"failed"}`), now, true},
		{"other secret", "other", h, body, now, true},
		{"no header", "s3cret", "", body, now, true},
		{"no signature", "s3cret", "t=1800000000", body, now, true},
		{"garbage", "s3cret", "t=x,v1=zz", body, now, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := client.VerifyCallback(tc.secret, tc.header, tc.body, 0, tc.now)
			if (err != nil) != tc.wantErr {
				t.Fatalf("VerifyCallback = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, client.ErrBadSignature) {
				t.Errorf("error %v is not ErrBadSignature", err)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	allow, err := callback.ParsePrefixes([]string{"127.0.0.0/8", "10.1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	p := &callback.Policy{Forbidden: callback.DefaultForbidden(), Allowed: allow}
	for _, tc := range []struct {
		ip   string
		want bool
	}{
		{"93.184.216.34", true},
		{"2606:2800:220:1::1", true},
		{"127.0.0.1", true}, // allowed
		{"10.1.2.3", true},  // allowed
		{"10.1.2.4", false},
		{"192.168.1.1", false},
		{"172.20.0.1", false},
		{"169.254.169.254", false},
		{"0.0.0.0", false},
		{"::1", false},
		{"::", false},
		{"fe80::1", false},
		{"fe80::1%eth0", false},
		{"fd00::1", false},
		{"::ffff:169.254.169.254", false},
		{"::ffff:127.0.0.1", true},
		{"100.64.0.1", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"::127.0.0.1", false},         // IPv4-compatible
		{"::ffff:0:7f00:1", false},     // IPv4-translated
		{"64:ff9b:1::7f00:1", false},   // local NAT64
		{"2002:7f00:1::", false},       // 6to4
		{"2001:0:4136:e378::1", false}, // Teredo
		{"fec0::1", false},             // site-local
	} {
		if got := p.Permits(netip.MustParseAddr(tc.ip)); got != tc.want {
			t.Errorf("Permits(%s) = %v, want %v", tc.ip, got, tc.want)
		}
	}
	if _, err := callback.ParsePrefixes([]string{"nope"}); err == nil {
		t.Error("ParsePrefixes(nope) did not fail")
	}
}

func TestCheckURL(t *testing.T) {
	p := &callback.Policy{Forbidden: callback.DefaultForbidden()}
	ctx := context.Background()
	for _, tc := range []struct {
		url  string
		want error
	}{
		{"https://93.184.216.34/hook", nil},
		{"http://[2606:2800:220:1::1]:8080/x", nil},
		{"ftp://93.184.216.34/", callback.ErrBadURL},
		{"file:///etc/passwd", callback.ErrBadURL},
		{"/relative", callback.ErrBadURL},
		{"https://", callback.ErrBadURL},
		{"http:opaque", callback.ErrBadURL},
		{"http://127.0.0.1:7700/api/v1/jobs", callback.ErrForbidden},
		{"http://169.254.169.254/latest/meta-data/", callback.ErrForbidden},
		{"http://[::1]/", callback.ErrForbidden},
		{"http://[fe80::1%25eth0]/", callback.ErrForbidden},
		{"http://localhost/", callback.ErrForbidden},
	} {
		err := p.CheckURL(ctx, tc.url)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("CheckURL(%q) = %v, want %v", tc.url, err, tc.want)
		}
	}
	// A refused name does not tell what it resolved to.
	if err := p.CheckURL(ctx, "http://localhost/"); err == nil || strings.Contains(err.Error(), "127.0.0.1") {
		t.Errorf("CheckURL(localhost) = %v: names the address", err)
	}
	// A dial to a forbidden address is refused whatever the name said.
	if err := p.Control("tcp4", "10.0.0.1:80", nil); !errors.Is(err, callback.ErrForbidden) {
		t.Errorf("Control(10.0.0.1) = %v", err)
	}
	if err := p.Control("tcp6", "[fe80::1%lo]:80", nil); !errors.Is(err, callback.ErrForbidden) {
		t.Errorf("Control(fe80::1%%lo) = %v", err)
	}
	if err := p.Control("tcp4", "93.184.216.34:443", nil); err != nil {
		t.Errorf("Control(public) = %v", err)
	}
}
