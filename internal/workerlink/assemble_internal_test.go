package workerlink

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/grappe/grappe/internal/clusterpb"
)

// pieces cuts a result's encoding as a worker does.
func pieces(t *testing.T, r *clusterpb.Result, size int) []*clusterpb.ResultPart {
	t.Helper()
	data, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var out []*clusterpb.ResultPart
	for off := 0; off < len(data); off += size {
		end := min(off+size, len(data))
		out = append(out, &clusterpb.ResultPart{Attempt: r.Attempt, Offset: int64(off), Data: data[off:end], Last: end == len(data)})
	}
	return out
}

func bigResult(job string, n int) *clusterpb.Result {
	return &clusterpb.Result{
		Attempt: &clusterpb.AttemptRef{JobId: job, Attempt: 1}, Verdict: "accepted",
		Run: &clusterpb.RunResult{Stdout: bytes.Repeat([]byte("y"), n)},
	}
}

func TestAssemblerRebuildsAResult(t *testing.T) {
	a := newAssembler(8<<20, 16<<20)
	want := bigResult("j1", 3<<20+17)
	var got *assembled
	for _, p := range pieces(t, want, 1<<20) {
		var err error
		if got, err = a.add(p); err != nil {
			t.Fatal(err)
		}
	}
	if got == nil || got.result == nil || !proto.Equal(got.result, want) {
		t.Fatal("the result was not rebuilt")
	}
	if a.buffered != 0 || len(a.partial) != 0 {
		t.Errorf("%d bytes still buffered after the last piece", a.buffered)
	}
}

func TestAssemblerCapsOneResult(t *testing.T) {
	a := newAssembler(2<<20, 16<<20)
	ps := pieces(t, bigResult("j1", 5<<20), 1<<20)
	var got *assembled
	for _, p := range ps {
		var err error
		if got, err = a.add(p); err != nil {
			t.Fatal(err)
		}
		if a.buffered > 2<<20 {
			t.Fatalf("%d bytes buffered, past the 2 MiB cap", a.buffered)
		}
	}
	if got == nil || got.result != nil || got.tooLarge < 5<<20 {
		t.Fatalf("got %+v, want too large with its whole size", got)
	}
	msg := tooLargeResult(ps[0].Attempt, got.tooLarge, 2<<20).Error
	if msg != "the result was too large to deliver: 6 MiB, the limit is 2 MiB" {
		t.Errorf("error %q", msg)
	}
}

func TestAssemblerCapsTheSession(t *testing.T) {
	a := newAssembler(4<<20, 5<<20)
	p1 := pieces(t, bigResult("j1", 3<<20), 1<<20)
	p2 := pieces(t, bigResult("j2", 3<<20), 1<<20)
	// Interleaved, as only a misbehaving worker sends them.
	var err error
	for i := 0; i < 3 && err == nil; i++ {
		if _, err = a.add(p1[i]); err != nil {
			break
		}
		_, err = a.add(p2[i])
	}
	if !errors.Is(err, errSessionBuffer) {
		t.Fatalf("err = %v, want the session's cap", err)
	}
	if a.buffered > 5<<20 {
		t.Errorf("%d bytes buffered, past the session's 5 MiB", a.buffered)
	}
}

func TestAssemblerRefusesOutOfOrderAndRepeatedPieces(t *testing.T) {
	for name, order := range map[string][]int{"skipped": {0, 2}, "repeated": {0, 1, 1}, "not from zero": {1}} {
		t.Run(name, func(t *testing.T) {
			a := newAssembler(8<<20, 8<<20)
			ps := pieces(t, bigResult("j1", 4<<20), 1<<20)
			var err error
			for _, i := range order {
				if _, err = a.add(ps[i]); err != nil {
					break
				}
			}
			if !errors.Is(err, errPieceOutOfOrder) {
				t.Fatalf("err = %v, want out of order", err)
			}
			if a.buffered != 0 {
				t.Errorf("%d bytes kept of a refused result", a.buffered)
			}
			// The rest of it is dropped quietly; sent again whole, it
			// is taken.
			var got *assembled
			for _, p := range ps[1:] {
				if got, err = a.add(p); err != nil || got != nil {
					t.Fatalf("a piece of a refused result: %v %v", got, err)
				}
			}
			for _, p := range ps {
				if got, err = a.add(p); err != nil {
					t.Fatal(err)
				}
			}
			if got == nil || got.result == nil {
				t.Fatal("the result sent again was not rebuilt")
			}
		})
	}
}

func TestAssemblerRefusesAResultOfAnotherAttempt(t *testing.T) {
	a := newAssembler(8<<20, 8<<20)
	ps := pieces(t, bigResult("j1", 2<<20), 1<<20)
	for _, p := range ps {
		p.Attempt = &clusterpb.AttemptRef{JobId: "j2", Attempt: 1}
	}
	var err error
	for _, p := range ps {
		if _, err = a.add(p); err != nil {
			break
		}
	}
	if !errors.Is(err, errPieceMismatch) {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(err.Error(), "another attempt") {
		t.Error(err)
	}
}

// FuzzAssembler feeds arbitrary pieces: the assembler never panics and
// never buffers past its caps, whatever a worker sends.
func FuzzAssembler(f *testing.F) {
	f.Add([]byte("abc"), int64(0), true, uint8(1))
	f.Add([]byte{0x0a, 0x05}, int64(3), false, uint8(2))
	f.Fuzz(func(t *testing.T, data []byte, offset int64, last bool, attempt uint8) {
		a := newAssembler(64, 100)
		for i := 0; i < 4; i++ {
			p := &clusterpb.ResultPart{
				Attempt: &clusterpb.AttemptRef{JobId: "j", Attempt: int32(attempt % 3)},
				Offset:  offset + int64(i*len(data)), Data: data, Last: last && i == 3,
			}
			_, _ = a.add(p)
			if a.buffered > 100 || a.buffered < 0 {
				t.Fatalf("%d bytes buffered", a.buffered)
			}
			for _, pr := range a.partial {
				if int64(len(pr.data)) > 64 {
					t.Fatalf("%d bytes of one result kept", len(pr.data))
				}
			}
		}
	})
}
