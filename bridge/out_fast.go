package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// JetStream fast-ingest batches (nats-server 2.14+; docs/bridge.md,
// "Fast batches"). When the stream allows batch publishing
// (StreamConfig.AllowBatchPublish) and StrictOrder is off, the out-bridge
// publishes each connection's messages as one fast batch per connection
// and epoch (a new one after each commit), instead of asking a PubAck for
// every message: the server stores each message as it arrives and
// acknowledges every N of them with a flow message. Everything else is as
// for single publishes: every message keeps its Nats-Msg-Id (the stream
// de-duplicates inside batches: a duplicate is skipped, not stored, and
// counts as persisted), the window is released in ring order as far as
// acknowledged, and any failure ends the epoch: the window is published
// again, in new batches, from the released position.
//
// The protocol lives in the reply subject of every message of a batch:
//
//	PREFIX BATCH.FLOW.fail.SEQ.OP.$FI
//
// PREFIX the connection's reply prefix (out_ack.go), BATCH the batch's ID
// (the prefix's inbox token, the epoch, the batch's number: unique per
// connection and epoch, at most 64 bytes), FLOW the most messages the
// server may wait before acknowledging, "fail" (a gap ends the batch: the
// server never skips a message), SEQ the message's sequence in the batch
// from 1, OP 0 for the first message, 1 for the next, 3 for an
// end-of-batch commit (one more sequence, no message stored). Its replies,
// on the subject of the message that caused them:
//
//	{"type":"ack","seq":K,"msgs":N}  messages 1..K of the batch persisted (or duplicates skipped); the next ack after N more
//	{"type":"gap",...}               a message missing or out of order: the batch ends
//	{"type":"err","seq":K,"error":E} message K refused (E): the batch ends with K-1
//	{"stream":S,"seq":N,"batch":B,"count":C}  the commit: messages 1..C persisted, the batch ended
//	{"error":E}                      the first message refused, or the batch unknown (timed out, the server restarted)
//
// The server sends them in order per batch (one stream goroutine, one
// output queue), so an error arrives before any acknowledgement covering
// a later message; the bridge takes an acknowledgement of K as covering
// its messages 1..K of that batch, and any error as the epoch's end.
//
// A batch the server waits on (fewer than N messages since its last
// acknowledgement) would hold its messages unacknowledged while the bridge
// waits; so the bridge commits its open batches before it waits: when the
// ring is empty (the wait hook ends the wait for it) and when the window
// is full. An open batch left by a failed epoch is dropped by the server
// after its batch timeout (10 s by default).

// fastFlow is the most messages the server may store between two
// acknowledgements of a batch (the server caps it at 500, divided among
// the stream's open batches); the bridge asks for at most a quarter of its
// window per connection.
const fastFlowMax = 500

// jsErrBatchDisabled is the error of a batch publish to a stream that
// does not allow it (AllowBatchPublish turned off since NewOut).
const jsErrBatchDisabled jetstream.ErrorCode = 10205

// fastConn is a connection's fast-batch state, owned by Run.
type fastConn struct {
	token string // the connection's inbox token, the start of its batch IDs
	batch uint32 // the current (or last) batch's number in this epoch
	open  bool   // the batch is open: started, not committed
	seq   uint64 // the batch sequence of its last message
	// q holds the window indices of the entries published on this
	// connection in this epoch and not yet acknowledged, in publish order.
	q      []int
	qh, qn int
	eob    nats.Msg // the end-of-batch commit, reused
	buf    []byte
}

// initFast prepares the connections' fast-batch state (b.fast).
func (b *Out) initFast() {
	b.fb = make([]fastConn, len(b.conns))
	for i := range b.fb {
		f := &b.fb[i]
		p := b.conns[i].prefix // _INBOX.TOKEN.
		t := p[:len(p)-1]
		if j := strings.LastIndexByte(t, '.'); j >= 0 {
			t = t[j+1:]
		}
		f.token = t
		f.q = make([]int, b.cfg.Window)
		f.eob = nats.Msg{Subject: b.cfg.Subject}
	}
	b.flow = max(1, min(fastFlowMax, b.cfg.Window/(4*len(b.conns))))
}

// fastRenew forgets the batches of the epoch given up (renew).
func (b *Out) fastRenew() {
	for i := range b.fb {
		f := &b.fb[i]
		f.open, f.batch, f.seq, f.qh, f.qn = false, 0, 0, 0, 0
	}
	b.fastOpen.Store(false)
}

// fastReply builds the reply subject of sequence seq of f's current batch
// with operation op.
func (b *Out) fastReply(conn int, f *fastConn, seq uint64, op int) string {
	r := append(f.buf[:0], b.conns[conn].prefix...)
	r = append(r, f.token...)
	r = append(r, '-')
	r = strconv.AppendUint(r, uint64(b.w.epoch), 10)
	r = append(r, '-')
	r = strconv.AppendUint(r, uint64(f.batch), 10)
	r = append(r, '.')
	r = strconv.AppendInt(r, int64(b.flow), 10)
	r = append(r, ".fail."...)
	r = strconv.AppendUint(r, seq, 10)
	r = append(r, '.')
	r = strconv.AppendInt(r, int64(op), 10)
	r = append(r, ".$FI"...)
	f.buf = r
	return string(r)
}

// fastPublish publishes e as the next message of its connection's batch
// (opening one if none is), like publish.
func (b *Out) fastPublish(e *entry) error {
	f := &b.fb[e.conn]
	if !f.open {
		f.batch++
		f.seq = 0
		f.open = true
		b.fastOpen.Store(true)
	}
	op := 1
	if f.seq == 0 {
		op = 0
	}
	e.msg.Reply = b.fastReply(e.conn, f, f.seq+1, op)
	e.epoch = 0 // the per-message reply subject (address) is not this one
	nc := b.conns[e.conn].nc
	err := nc.PublishMsg(e.msg)
	if err != nil {
		return b.publishFailed(e, nc, err)
	}
	f.seq++
	e.batch, e.bseq = f.batch, f.seq
	f.q[(f.qh+f.qn)%len(f.q)] = e.slot
	f.qn++
	e.sent = true
	e.at = b.now()
	b.arm()
	b.st.published.Add(1)
	return nil
}

// fastCommit commits open batches with an end-of-batch message, so that
// the server acknowledges all their messages without waiting for more
// (before the bridge waits): every one when the ring is empty; when the
// window is full (stuck), only those with fewer messages awaiting their
// acknowledgement than the flow: a batch with at least that many is
// acknowledged past its oldest without a commit (the server acknowledges
// every flow messages at most), and keeps its server state and cadence.
func (b *Out) fastCommit(stuck bool) {
	for i := range b.fb {
		f := &b.fb[i]
		if !f.open || b.w.failed || (stuck && f.qn >= b.flow) {
			continue
		}
		f.open = false
		if f.seq == 0 {
			continue
		}
		f.eob.Reply = b.fastReply(i, f, f.seq+1, 3)
		if err := b.conns[i].nc.PublishMsg(&f.eob); err != nil {
			b.epochFailed(err)
		}
	}
	open := false
	for i := range b.fb {
		open = open || b.fb[i].open
	}
	b.fastOpen.Store(open)
}

// fastAck marks connection conn's entries of batch batch up to sequence
// upto acknowledged; it returns whether it acknowledged any. An entry of an
// earlier batch still waiting is a protocol breach: the epoch fails.
func (b *Out) fastAck(conn int, batch uint32, upto uint64) bool {
	f := &b.fb[conn]
	acked := false
	for f.qn > 0 {
		e := &b.w.e[f.q[f.qh]]
		if !e.sent || e.acked || e.conn != conn {
			// Released or re-published since: not this epoch's (cannot
			// happen: renew empties the queue).
			f.qh, f.qn = (f.qh+1)%len(f.q), f.qn-1
			continue
		}
		if e.batch > batch || (e.batch == batch && e.bseq > upto) {
			break
		}
		if e.batch < batch {
			b.epochFailed(fmt.Errorf("the stream acknowledged batch %d of connection %d before ending batch %d: %w", batch, conn+1, e.batch, jetstream.ErrInvalidJSAck))
			return acked
		}
		b.w.ack(e)
		b.st.acked.Add(1)
		b.stored++
		acked = true
		f.qh, f.qn = (f.qh+1)%len(f.q), f.qn-1
	}
	return acked
}

// fastEntry returns conn's entry of batch batch with sequence seq waiting
// for its acknowledgement, or else its oldest waiting one, or nil: the
// message an error names.
func (b *Out) fastEntry(conn int, batch uint32, seq uint64) *entry {
	f := &b.fb[conn]
	var first *entry
	for k := 0; k < f.qn; k++ {
		e := &b.w.e[f.q[(f.qh+k)%len(f.q)]]
		if first == nil {
			first = e
		}
		if e.batch == batch && e.bseq == seq {
			return e
		}
	}
	return first
}

// fastReplyKind is what a fast batch's reply reports.
type fastReplyKind uint8

const (
	fastAcked fastReplyKind = iota // messages up to seq persisted (a flow ack, or the commit's PubAck: count)
	fastError                      // an error: err, about message seq (0: unknown)
)

// parseFastToken parses "TOKEN-EPOCH-BATCH.FLOW.fail.SEQ.OP.$FI" (a reply
// subject after the connection's prefix): the epoch, the batch and the
// message's sequence.
func parseFastToken(s string) (epoch, batch uint32, seq uint64, ok bool) {
	dot := -1
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			dot = i
			break
		}
	}
	if dot < 0 {
		return 0, 0, 0, false
	}
	id := s[:dot]
	j := len(id) - 1
	for j >= 0 && id[j] != '-' {
		j--
	}
	if j < 0 {
		return 0, 0, 0, false
	}
	bn, err := strconv.ParseUint(id[j+1:], 10, 32)
	if err != nil {
		return 0, 0, 0, false
	}
	k := j - 1
	for k >= 0 && id[k] != '-' {
		k--
	}
	if k < 0 {
		return 0, 0, 0, false
	}
	en, err := strconv.ParseUint(id[k+1:j], 10, 32)
	if err != nil {
		return 0, 0, 0, false
	}
	// .FLOW.fail.SEQ.OP.$FI: SEQ is the third field after the ID.
	rest := s[dot+1:]
	for n := 0; n < 2; n++ {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return 0, 0, 0, false
		}
		rest = rest[i+1:]
	}
	i := strings.IndexByte(rest, '.')
	if i < 0 {
		return 0, 0, 0, false
	}
	seq, err = strconv.ParseUint(rest[:i], 10, 64)
	if err != nil {
		return 0, 0, 0, false
	}
	return uint32(en), uint32(bn), seq, true
}

// fastReplyBody is a fast batch's reply, for encoding/json.
type fastReplyBody struct {
	Type   string              `json:"type"`
	Seq    uint64              `json:"seq"`
	Stream string              `json:"stream"`
	Count  uint64              `json:"count"`
	Error  *jetstream.APIError `json:"error"`
}

// parseFastReply parses a fast batch's reply (data): acknowledged up to
// seq, or an error (about message seq, 0 when the reply does not say).
func parseFastReply(d []byte) (kind fastReplyKind, seq uint64, err error) {
	if rest, ok := cut(d, `{"type":"ack","seq":`); ok && len(rest) > 0 {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			seq = seq*10 + uint64(rest[i]-'0')
			i++
		}
		if i > 0 && i < 20 && i < len(rest) && rest[i] == ',' {
			return fastAcked, seq, nil
		}
		seq = 0
	}
	var r fastReplyBody
	if jerr := json.Unmarshal(d, &r); jerr != nil {
		return fastError, 0, jetstream.ErrInvalidJSAck
	}
	switch {
	case r.Error != nil:
		return fastError, r.Seq, r.Error
	case r.Type == "ack":
		return fastAcked, r.Seq, nil
	case r.Type == "gap":
		return fastError, 0, errFastGap
	case r.Type == "" && r.Stream != "":
		return fastAcked, r.Count, nil
	}
	return fastError, 0, jetstream.ErrInvalidJSAck
}

// errFastGap is a gap the server found in a batch of the bridge's: a
// message missing or out of order (the batch ends; the window is
// published again).
var errFastGap = errors.New("the stream found a gap in the bridge's batch")

// onFastReply is onReply for a fast batch's reply (rest: its subject
// after the connection's prefix).
func (b *Out) onFastReply(conn int, rest string, m *nats.Msg) {
	epoch, batch, seq, ok := parseFastToken(rest)
	if !ok {
		return
	}
	ev := event{kind: evFast, epoch: epoch, conn: conn, batch: batch, bseq: seq}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		ev.err = jetstream.ErrNoStreamResponse
	} else {
		kind, n, err := parseFastReply(m.Data)
		if kind == fastAcked {
			ev.bseq = n
		} else {
			ev.err = err
			if n > 0 {
				ev.bseq = n
			}
		}
	}
	b.in.put(ev)
}
