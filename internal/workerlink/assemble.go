package workerlink

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/grappe/grappe/internal/clusterpb"
)

// Reassembly refusals. A refused piece drops what was buffered of its
// attempt; the worker sends the whole result again on its next session.
var (
	errPieceOutOfOrder = errors.New("result piece out of order or repeated")
	errSessionBuffer   = errors.New("too many result bytes buffered for this worker")
	errPieceMismatch   = errors.New("the reassembled result names another attempt")
)

// assembler rebuilds the results a worker sends in pieces (ResultPart).
// It belongs to one session, so whatever it buffers goes with the session.
// It buffers at most maxAttempt bytes of one result and maxSession bytes
// over all of them: a result past maxAttempt is counted but not kept, and
// ends as tooLarge, for the master to fail the job with a clear reason.
type assembler struct {
	maxAttempt, maxSession int64
	buffered               int64
	partial                map[attemptRef]*partialResult
	// refused are attempts whose result was refused mid-way: the rest of
	// its pieces are dropped quietly, until it starts again at offset 0.
	refused map[attemptRef]bool
}

// attemptRef names the attempt a result belongs to.
type attemptRef struct {
	id string
	n  int
}

type partialResult struct {
	data []byte
	size int64 // bytes received, kept or not
	over bool  // past maxAttempt: counting only
}

func newAssembler(maxAttempt, maxSession int64) *assembler {
	return &assembler{
		maxAttempt: maxAttempt, maxSession: maxSession,
		partial: map[attemptRef]*partialResult{}, refused: map[attemptRef]bool{},
	}
}

// assembled is what a last piece completes: the result, or the size of one
// too large to keep.
type assembled struct {
	result   *clusterpb.Result
	tooLarge int64
}

// add takes one piece. It returns a non-nil assembled when the piece was
// the last of its result.
func (a *assembler) add(p *clusterpb.ResultPart) (*assembled, error) {
	if p.Attempt == nil {
		return nil, errPieceOutOfOrder
	}
	k := attemptRef{id: p.Attempt.JobId, n: int(p.Attempt.Attempt)}
	if a.refused[k] {
		if p.Offset != 0 {
			if p.Last {
				delete(a.refused, k)
			}
			return nil, nil
		}
		delete(a.refused, k)
	}
	pr := a.partial[k]
	if pr == nil {
		pr = &partialResult{}
		a.partial[k] = pr
	}
	if p.Offset != pr.size {
		a.refuse(k)
		return nil, fmt.Errorf("%w: offset %d, expected %d", errPieceOutOfOrder, p.Offset, pr.size)
	}
	n := int64(len(p.Data))
	pr.size += n
	switch {
	case pr.over:
	case pr.size > a.maxAttempt:
		// Too large: stop keeping it, count the rest for the error.
		a.buffered -= int64(len(pr.data))
		pr.data, pr.over = nil, true
	case a.buffered+n > a.maxSession:
		a.refuse(k)
		return nil, errSessionBuffer
	default:
		pr.data = append(pr.data, p.Data...)
		a.buffered += n
	}
	if !p.Last {
		return nil, nil
	}
	a.drop(k)
	if pr.over {
		return &assembled{tooLarge: pr.size}, nil
	}
	var r clusterpb.Result
	if err := proto.Unmarshal(pr.data, &r); err != nil {
		return nil, fmt.Errorf("reassembled result: %w", err)
	}
	if r.Attempt.GetJobId() != k.id || int(r.Attempt.GetAttempt()) != k.n {
		return nil, errPieceMismatch
	}
	return &assembled{result: &r}, nil
}

func (a *assembler) refuse(k attemptRef) {
	a.drop(k)
	a.refused[k] = true
}

func (a *assembler) drop(k attemptRef) {
	if pr := a.partial[k]; pr != nil {
		a.buffered -= int64(len(pr.data))
		delete(a.partial, k)
	}
}

// tooLargeResult is the result the master records for a result it could
// not take: the job fails with a sentence its owner can act on.
func tooLargeResult(a *clusterpb.AttemptRef, size, limit int64) *clusterpb.Result {
	return &clusterpb.Result{Attempt: a, Error: fmt.Sprintf(
		"the result was too large to deliver: %s, the limit is %s", mib(size), mib(limit))}
}

// mib writes a size in MiB, rounded up so that a result just over the
// limit never reads as equal to it.
func mib(n int64) string {
	return fmt.Sprintf("%d MiB", (n+(1<<20)-1)>>20)
}
