package bridge

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"
)

// window is the out-bridge's messages read from the ring and not yet
// released, in ring order: a circular array of OutConfig.Window entries,
// each with its own nats.Msg, allocated once and reused (its Data points
// into the ring, where the held message stays until released: the bridge
// copies no payload).
//
// An epoch is one series of publishes of the window. A failed publish or
// acknowledgement ends it: the next re-publishes every entry not yet
// acknowledged, in order. Every publish's reply subject names its epoch
// and its entry (out_ack.go), so that the outcome of a publish of an epoch
// given up (a late acknowledgement) is told apart and ignored. Within an
// epoch an entry is published again only once its previous message was
// acknowledged (a failure ends the epoch), so one reply subject serves
// each entry for the epoch.
//
// The window is one series in ring order whatever the number of
// connections (OutConfig.Conns): each entry is published on the connection
// of its producer slot (slot % connections), and its acknowledgement comes
// back on that connection, so acknowledgements of different connections
// arrive out of ring order; pop releases only the prefix whose every
// entry is acknowledged. Owned by the goroutine in Run.
type window struct {
	e       []entry
	head, n int      // the oldest entry, and how many are in use
	acked   int      // entries in use that are acknowledged (and not released)
	epoch   uint32   // the current epoch (from 1)
	reply   []string // each connection's reply subjects' prefix (out_ack.go)
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
	msg   *nats.Msg // reused: Subject, Header (Msg-Id, expectation), Reply, Data
	pos   uint64    // the message's ring position (its Pos): Release's argument
	exp   []string  // the expectation header's value (strict), reused
	ids   []string  // the Msg-Id header's value, reused
	slot  int       // the entry's index in window.e, in its reply subject
	conn  int       // the connection it is published on: its producer slot % connections
	epoch uint32    // the epoch msg.Reply names (0: none yet)
	rconn int       // the connection whose prefix msg.Reply has
	at    int64     // when published, on Out's clock (the acknowledgement timeout)
	sent  bool      // published in this epoch
	acked bool
}

// id is the entry's Nats-Msg-Id.
func (e *entry) id() string { return e.ids[0] }

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

// init makes the window's entries; reply holds each connection's reply
// subjects' prefix (at least one).
func (w *window) init(size int, subject string, reply []string, strict bool) {
	w.e = make([]entry, size)
	w.subject = subject
	w.reply = reply
	w.strict = strict
	for i := range w.e {
		e := &w.e[i]
		e.exp = make([]string, 1)
		e.ids = make([]string, 1)
		e.slot = i
		e.msg = &nats.Msg{Subject: subject, Header: nats.Header{msgIDHeader: e.ids}}
	}
	w.renew()
}

// renew starts an epoch: no entry is published in it yet, and outcomes of
// the previous one's publishes no longer find their entry.
func (w *window) renew() {
	w.epoch++
	for i := range w.e {
		w.e[i].sent = false
	}
	w.failed = false
	w.last = ""
}

// address sets e's reply subject for the current epoch: its connection's
// prefix, the epoch and the entry's index (built once per entry, epoch and
// connection).
func (w *window) address(e *entry) {
	if e.epoch == w.epoch && e.rconn == e.conn {
		return
	}
	b := append(w.buf[:0], w.reply[e.conn]...)
	b = strconv.AppendUint(b, uint64(w.epoch), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(e.slot), 10)
	w.buf = b
	e.msg.Reply = string(b)
	e.epoch, e.rconn = w.epoch, e.conn
}

// full reports whether the window has no room.
func (w *window) full() bool { return w.n == len(w.e) }

// room is how many more messages the window takes.
func (w *window) room() int { return len(w.e) - w.n }

// push adds a message read from the ring at the window's end: its data
// (pointing into the ring), its position, its connection (its producer
// slot's: slot % connections, so that each producer's messages go out on
// one connection, in order), and its Msg-Id (id, then slot and sequence,
// or "p" and its position without sequences).
func (w *window) push(id string, seqs bool, slot int, seq, pos uint64, data []byte) *entry {
	i := w.head + w.n
	if i >= len(w.e) {
		i -= len(w.e)
	}
	w.n++
	e := &w.e[i]
	e.pos, e.sent, e.acked = pos, false, false
	e.conn = 0
	if n := len(w.reply); n > 1 && slot > 0 {
		e.conn = slot % n
	}
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
	e.ids[0] = string(b)
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

// mine returns the entry whose publish, in this epoch, a reply naming
// epoch and slot answers on connection conn, if it awaits its outcome; nil
// otherwise (a reply of an epoch given up, a slot out of range, or an
// entry published on another connection).
func (w *window) mine(conn int, epoch uint32, slot int) *entry {
	if epoch != w.epoch || slot < 0 || slot >= len(w.e) {
		return nil
	}
	if e := &w.e[slot]; e.sent && !e.acked && e.conn == conn {
		return e
	}
	return nil
}

// ack marks e acknowledged (e from mine).
func (w *window) ack(e *entry) {
	e.acked = true
	w.acked++
}

// oldest returns the oldest entry published in this epoch and awaiting
// its outcome, or nil. Publishes of an epoch go out in ring order (on
// whichever connections), so it is the first entry not acknowledged, if
// published.
func (w *window) oldest() *entry {
	for k := 0; k < w.n; k++ {
		e := w.at(k)
		if e.acked {
			continue
		}
		if e.sent {
			return e
		}
		return nil
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

// eventKind is what an event reports.
type eventKind uint8

const (
	evReply      eventKind = iota // a publish's reply: acknowledged (dup: as a duplicate) or refused (err)
	evTick                        // the acknowledgement timer fired
	evDisconnect                  // a connection was lost: the epoch's outstanding publishes fail
	evRefused                     // the server refused an operation of the bridge's (a permissions violation: err)
)

// event is a publish's outcome, or a tick of the acknowledgement timer, or
// a lost connection, for Run.
type event struct {
	kind  eventKind
	epoch uint32 // evReply, evDisconnect: the epoch it concerns
	conn  int    // evReply: the connection it came on
	slot  int    // evReply: the entry
	dup   bool
	err   error
}

// inbox hands events from nats.go's goroutines (the reply subscription's
// handler, the disconnection callback) and the timer to Run. A producer of
// events never waits. Its memory is bounded by the replies arriving
// between two of Run's takes.
type inbox struct {
	mu      sync.Mutex
	q       []event
	spare   []event
	notify  chan struct{} // a token when events were added
	pending atomic.Bool   // q is not empty
	// wake, if set, ends Run's wait for the ring's messages (it cancels
	// the context of Run's read): the next event calls it, once.
	wake atomic.Pointer[context.CancelFunc]
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
	if w := in.wake.Swap(nil); w != nil {
		(*w)()
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
