package connlimit

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// serve accepts on l until it closes, keeping every connection open,
// and reports each accepted one.
func serve(t *testing.T, l net.Listener) <-chan net.Conn {
	t.Helper()
	accepted := make(chan net.Conn, 1000)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	return accepted
}

func listen(t *testing.T, cfg Config) (*Listener, <-chan net.Conn) {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	l := NewListener(inner, cfg)
	t.Cleanup(func() { l.Close() })
	return l, serve(t, l)
}

// dialFrom connects to addr from a given loopback source address.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reports whether the server closed c (EOF or reset)
// within wait.
func closedWithin(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// refused: the server closes a connection over a cap at once (generous
// wait for a loaded machine).
func refused(c net.Conn) bool { return closedWithin(c, 5*time.Second) }

// kept: a connection within the caps stays open (the server writes
// nothing, so a moment of silence is the answer).
func kept(c net.Conn) bool { return !closedWithin(c, 300*time.Millisecond) }

func waitAccepted(t *testing.T, accepted <-chan net.Conn, n int) []net.Conn {
	t.Helper()
	var out []net.Conn
	for range n {
		select {
		case c := <-accepted:
			out = append(out, c)
		case <-time.After(5 * time.Second):
			t.Fatalf("accepted %d connections, want %d", len(out), n)
		}
	}
	return out
}

func TestPerAddressCap(t *testing.T) {
	l, accepted := listen(t, Config{PerAddr: 3, Name: "test"})
	addr := l.Addr().String()
	for range 3 {
		dialFrom(t, "127.0.0.1", addr)
	}
	held := waitAccepted(t, accepted, 3)
	over := dialFrom(t, "127.0.0.1", addr)
	if !refused(over) {
		t.Fatal("a 4th connection from the same address was kept open; want closed at once")
	}
	if l.Refused() != 1 {
		t.Errorf("Refused() = %d, want 1", l.Refused())
	}
	// Another address is not affected.
	other := dialFrom(t, "127.0.0.2", addr)
	waitAccepted(t, accepted, 1)
	if !kept(other) {
		t.Fatal("a connection from another address was refused")
	}
	// Closing one (server side, as a server closes an idle connection)
	// makes room again.
	held[0].Close()
	held[0].Close() // twice: counted once
	if n := l.Open(netip.MustParseAddr("127.0.0.1")); n != 2 {
		t.Fatalf("Open(127.0.0.1) = %d after a close, want 2", n)
	}
	again := dialFrom(t, "127.0.0.1", addr)
	waitAccepted(t, accepted, 1)
	if !kept(again) {
		t.Fatal("a connection after one closed was refused")
	}
}

func TestSharedTotal(t *testing.T) {
	budget := NewBudget(2)
	a, acceptedA := listen(t, Config{PerAddr: 10, Total: budget})
	b, acceptedB := listen(t, Config{PerAddr: 10, Total: budget})
	dialFrom(t, "127.0.0.1", a.Addr().String())
	waitAccepted(t, acceptedA, 1)
	dialFrom(t, "127.0.0.2", b.Addr().String())
	held := waitAccepted(t, acceptedB, 1)
	if budget.InUse() != 2 {
		t.Fatalf("InUse = %d, want 2", budget.InUse())
	}
	if over := dialFrom(t, "127.0.0.3", a.Addr().String()); !refused(over) {
		t.Fatal("a connection past the total was kept")
	}
	held[0].Close()
	c := dialFrom(t, "127.0.0.3", a.Addr().String())
	waitAccepted(t, acceptedA, 1)
	if !kept(c) {
		t.Fatal("a connection after one of the other listener's closed was refused")
	}
}

func TestDefaultTotal(t *testing.T) {
	for _, tc := range []struct {
		limit uint64
		want  int
	}{
		{0, 0},
		{100, 64},
		{1024, 768},
		{1 << 20, 3 << 18},
	} {
		if got := DefaultTotal(tc.limit); got != tc.want {
			t.Errorf("DefaultTotal(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
}

func TestRaiseFileLimit(t *testing.T) {
	got, err := RaiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	if FileLimit() != got {
		t.Fatalf("FileLimit() = %d after RaiseFileLimit() = %d", FileLimit(), got)
	}
}
