package worker

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grappe/grappe/internal/clusterpb"
)

// A result travels as its protobuf encoding. One under PieceSize goes in a
// plain Result message; a bigger one is cut into ResultParts of at most
// PieceSize bytes, so no message of the link can approach gRPC's size cap
// and the stream's only writer can slip a heartbeat between two pieces.
const PieceSize = 1 << 20

// delivery is one result being sent on the current session.
type delivery struct {
	key  attemptKey
	res  *clusterpb.Result
	size int    // of res's encoding
	data []byte // res's encoding, for a result sent in pieces
	off  int    // bytes already sent
}

// encodeIfBig encodes a result too big for one message, or returns nil.
// An encoding error is left for newDelivery to report.
func encodeIfBig(r *clusterpb.Result) []byte {
	if r == nil || proto.Size(r) < PieceSize {
		return nil
	}
	data, err := proto.Marshal(r)
	if err != nil {
		return nil
	}
	return data
}

// forgetResult drops an acknowledged or abandoned result. Called with
// w.mu held.
func (w *Worker) forgetResult(k attemptKey) {
	delete(w.pending, k)
	delete(w.encoded, k)
}

// newDelivery prepares a pending result. A small one is sent as it is
// (the common case costs no extra encoding); a big one comes encoded by
// its job (enc), or is encoded here. A result that cannot be encoded (a
// string that is not UTF-8, say) is replaced by one that says so: the job
// fails with that error rather than wedge the link.
func (w *Worker) newDelivery(k attemptKey, r *clusterpb.Result, enc []byte) *delivery {
	if enc != nil {
		return &delivery{key: k, res: r, size: len(enc), data: enc}
	}
	d := &delivery{key: k, res: r, size: proto.Size(r)}
	if d.size < PieceSize {
		return d
	}
	data, err := proto.Marshal(r)
	if err != nil {
		w.log.Error("result cannot be encoded; failing the job", "job", k.id, "attempt", k.n, "err", err)
		d.res = w.replaceResult(k, "the result could not be delivered: it could not be encoded")
		d.size = proto.Size(d.res)
		return d
	}
	d.data = data
	return d
}

// replaceResult swaps the pending result of k for a small one carrying
// only msg, and returns it.
func (w *Worker) replaceResult(k attemptKey, msg string) *clusterpb.Result {
	r := &clusterpb.Result{Attempt: k.ref(), Error: msg}
	w.mu.Lock()
	if _, ok := w.pending[k]; ok {
		w.pending[k] = r
		delete(w.encoded, k)
	}
	w.mu.Unlock()
	return r
}

// next returns the message carrying the delivery's next bytes, and
// whether it is the delivery's last message.
func (d *delivery) next() (*clusterpb.WorkerMessage, bool) {
	if d.data == nil {
		// Small: one plain Result, as every worker sends it.
		return &clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_Result{Result: d.res}}, true
	}
	end := min(d.off+PieceSize, len(d.data))
	part := &clusterpb.ResultPart{
		Attempt: d.key.ref(), Offset: int64(d.off), Data: d.data[d.off:end], Last: end == len(d.data),
	}
	d.off = end
	return &clusterpb.WorkerMessage{Msg: &clusterpb.WorkerMessage_ResultPart{ResultPart: part}}, part.Last
}

// nextDelivery picks a pending result not yet sent on this session.
func (w *Worker) nextDelivery(sent map[attemptKey]bool) *delivery {
	w.mu.Lock()
	var k attemptKey
	var r *clusterpb.Result
	for key, res := range w.pending {
		if !sent[key] {
			k, r = key, res
			break
		}
	}
	enc := w.encoded[k]
	w.mu.Unlock()
	if r == nil {
		return nil
	}
	return w.newDelivery(k, r, enc)
}

// stillPending reports whether the master has not acknowledged k yet: a
// result it acknowledged early (refused as too large) is not sent on.
func (w *Worker) stillPending(k attemptKey) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.pending[k]
	return ok
}

// resultsChanged wakes the session's writer: a result is ready to go.
func (w *Worker) resultsChanged() {
	select {
	case w.resultReady <- struct{}{}:
	default:
	}
}

// sendPiece sends the delivery's next message. A refusal that is not the
// link failing (the message rejected by gRPC itself) is the result's
// fault, not the link's: the result is replaced by an error the master
// records, so that the next session delivers that instead of failing the
// same way forever.
func (w *Worker) sendPiece(stream clusterpb.Cluster_ConnectClient, d *delivery) (done bool, err error) {
	msg, last := d.next()
	if err := stream.Send(msg); err != nil {
		switch status.Code(err) {
		case codes.ResourceExhausted, codes.Internal, codes.InvalidArgument:
			w.log.Error("result refused by the transport; failing the job", "job", d.key.id, "attempt", d.key.n, "err", err)
			w.replaceResult(d.key, fmt.Sprintf("the result could not be delivered: %d MiB", (d.size+(1<<20)-1)>>20))
		}
		return false, fmt.Errorf("send result: %w", err)
	}
	return last, nil
}

// results is what one session has sent of the pending results: the one
// going out in pieces, and those sent whole (awaiting their ack).
type results struct {
	cur  *delivery
	sent map[attemptKey]bool
}

// step sends the next message of a pending result not yet sent on this
// session. busy is false when there was none.
func (rs *results) step(w *Worker, stream clusterpb.Cluster_ConnectClient) (busy bool, err error) {
	if rs.sent == nil {
		rs.sent = map[attemptKey]bool{}
	}
	if rs.cur != nil && !w.stillPending(rs.cur.key) {
		rs.cur = nil // acknowledged (refused) before it was all sent
	}
	if rs.cur == nil {
		if rs.cur = w.nextDelivery(rs.sent); rs.cur == nil {
			return false, nil
		}
	}
	done, err := w.sendPiece(stream, rs.cur)
	if err != nil {
		return true, err
	}
	if done {
		rs.sent[rs.cur.key] = true
		rs.cur = nil
		w.forgetAcknowledged(rs.sent)
	}
	return true, nil
}

// forgetAcknowledged drops from sent the results the master has
// acknowledged, so that a long session's bookkeeping stays as small as
// what is in flight.
func (w *Worker) forgetAcknowledged(sent map[attemptKey]bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k := range sent {
		if _, ok := w.pending[k]; !ok {
			delete(sent, k)
		}
	}
}
