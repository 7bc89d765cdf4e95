package bridge

import (
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// window is the out-bridge's messages read from the ring and not yet
// released, in ring order: a circular array of OutConfig.Window entries,
// each with its own nats.Msg (its Data points into the ring, where the
// held message stays until released: the bridge copies no payload).
//
// An epoch is one series of publishes of the window. A failed publish or
// acknowledgement ends it: the next re-publishes every entry not yet
// acknowledged, in order, with fresh nats.Msg values, so that the outcome
// of a publish of an epoch given up (a late acknowledgement, a timeout) is
// told apart by its pointer and ignored. Owned by the goroutine in Run.
type window struct {
	e       []entry
	head, n int // the oldest entry, and how many are in use
	acked   int // entries in use that are acknowledged (and not released)
	idx     map[*nats.Msg]int
	subject string
	failed  bool // the epoch failed: re-publish before reading on
	buf     []byte

	// strict: every publish but an epoch's first carries the Msg-Id of the
	// message before it in ring order as Nats-Expected-Last-Msg-Id
	// (OutConfig.StrictOrder); last is that Msg-Id for the next publish
	// ("": none, the epoch's first).
	strict bool
	last   string
}

type entry struct {
	msg   *nats.Msg
	pos   uint64   // the message's ring position (its Pos): Release's argument
	exp   []string // the expectation header's value (strict), reused
	sent  bool     // published in this epoch
	acked bool
}

// id is the entry's Nats-Msg-Id.
func (e *entry) id() string { return e.msg.Header[msgIDHeader][0] }

// expect sets (or, for "", removes) the entry's expectation header.
func (e *entry) expect(last string) {
	if last == "" {
		delete(e.msg.Header, expLastIDHeader)
		return
	}
	e.exp[0] = last
	e.msg.Header[expLastIDHeader] = e.exp
}

// expected returns the entry's expectation ("" none).
func (e *entry) expected() string {
	if v := e.msg.Header[expLastIDHeader]; len(v) == 1 {
		return v[0]
	}
	return ""
}

func (w *window) init(size int, subject string, strict bool) {
	w.e = make([]entry, size)
	w.subject = subject
	w.strict = strict
	for i := range w.e {
		w.e[i].exp = make([]string, 1)
	}
	w.renew()
}

// renew gives every entry a fresh nats.Msg (same subject, data and
// Msg-Id), starting an epoch: outcomes of the previous one no longer find
// their entry.
func (w *window) renew() {
	w.idx = make(map[*nats.Msg]int, len(w.e))
	for i := range w.e {
		e := &w.e[i]
		m := &nats.Msg{Subject: w.subject, Header: nats.Header{msgIDHeader: []string{""}}}
		if e.msg != nil {
			m.Data = e.msg.Data
			m.Header[msgIDHeader][0] = e.msg.Header[msgIDHeader][0]
		}
		e.msg, e.sent = m, false
		w.idx[m] = i
	}
	w.failed = false
	w.last = ""
}

// full reports whether the window has no room.
func (w *window) full() bool { return w.n == len(w.e) }

// room is how many more messages the window takes.
func (w *window) room() int { return len(w.e) - w.n }

// push adds a message read from the ring at the window's end: its data
// (pointing into the ring), its position, and its Msg-Id (id, then slot
// and sequence, or "p" and its position without sequences).
func (w *window) push(id string, seqs bool, slot int, seq, pos uint64, data []byte) *entry {
	i := w.head + w.n
	if i >= len(w.e) {
		i -= len(w.e)
	}
	w.n++
	e := &w.e[i]
	e.pos, e.sent, e.acked = pos, false, false
	e.msg.Data = data
	b := append(w.buf[:0], id...)
	if seqs {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(slot), 10)
		b = append(b, ':')
		b = strconv.AppendUint(b, seq, 10)
	} else {
		b = append(b, ":p"...)
		b = strconv.AppendUint(b, pos, 10)
	}
	w.buf = b
	e.msg.Header[msgIDHeader][0] = string(b)
	return e
}

// at returns the k-th entry from the oldest.
func (w *window) at(k int) *entry {
	i := w.head + k
	if i >= len(w.e) {
		i -= len(w.e)
	}
	return &w.e[i]
}

// ack marks the entry whose publish m was acknowledged, if it is of this
// epoch and not acknowledged yet; it reports whether it did.
func (w *window) ack(m *nats.Msg) bool {
	i, ok := w.idx[m]
	if !ok {
		return false
	}
	e := &w.e[i]
	if !e.sent || e.acked {
		return false
	}
	e.acked = true
	w.acked++
	return true
}

// mine reports whether m is the message of an entry published in this
// epoch and awaiting its outcome.
func (w *window) mine(m *nats.Msg) bool {
	i, ok := w.idx[m]
	return ok && w.e[i].sent && !w.e[i].acked
}

// entry returns the entry whose message is m in this epoch, or nil.
func (w *window) entry(m *nats.Msg) *entry {
	if i, ok := w.idx[m]; ok {
		return &w.e[i]
	}
	return nil
}

// pop removes the acknowledged entries at the window's start and returns
// how many, and the position after the last (0, 0 if the oldest entry is
// not acknowledged).
func (w *window) pop() (k int, pos uint64) {
	for w.n > 0 {
		e := &w.e[w.head]
		if !e.acked {
			break
		}
		pos = e.pos
		e.acked, e.sent = false, false
		e.msg.Data = nil
		w.head++
		if w.head == len(w.e) {
			w.head = 0
		}
		w.n--
		w.acked--
		k++
	}
	return k, pos
}

// event is a publish's outcome: acknowledged (dup: as a duplicate) or
// failed (err).
type event struct {
	msg *nats.Msg
	dup bool
	err error
}

// inbox hands events from nats.go's callbacks to Run. A callback never
// waits: some run while nats.go holds its publisher's lock, which Run's
// next publish needs. Its memory is bounded by the publishes pending in
// nats.go (WithPublishAsyncMaxPending).
type inbox struct {
	mu      sync.Mutex
	q       []event
	spare   []event
	notify  chan struct{} // a token when events were added
	pending atomic.Bool   // q is not empty
}

func (in *inbox) init(size int) {
	in.q = make([]event, 0, size)
	in.spare = make([]event, 0, size)
	in.notify = make(chan struct{}, 1)
}

func (in *inbox) put(ev event) {
	in.mu.Lock()
	in.q = append(in.q, ev)
	in.pending.Store(true)
	in.mu.Unlock()
	select {
	case in.notify <- struct{}{}:
	default:
	}
}

// take returns the events so far; the slice is valid until the next take.
func (in *inbox) take() []event {
	in.mu.Lock()
	q := in.q
	in.q, in.spare = in.spare[:0], q
	in.pending.Store(false)
	in.mu.Unlock()
	return q
}

// onAck and onErr are nats.go's callbacks for the publishes' outcomes
// (on its goroutines).
func (b *Out) onAck(_ jetstream.JetStream, m *nats.Msg, pa *jetstream.PubAck) {
	b.in.put(event{msg: m, dup: pa.Duplicate})
}

func (b *Out) onErr(_ jetstream.JetStream, m *nats.Msg, err error) {
	b.in.put(event{msg: m, err: err})
}
