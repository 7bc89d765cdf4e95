package bridge

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The out-bridge's publishes and their acknowledgements, below nats.go's
// jetstream asynchronous publishing (which costs a future, a timer, a reply
// subject and a JSON decoding per message): each publish is a core
// PublishMsg with a reply subject PREFIX.EPOCH.ENTRY, where PREFIX is an
// inbox of the connection's (nats.Conn.NewInbox) and one wildcard
// subscription, PREFIX.*.*, takes every reply. Its handler parses the
// stream's acknowledgement without encoding/json in the shapes the server
// sends ({"stream":"S","seq":N}, with "domain" and "duplicate"), and with
// it for anything else (an error). One timer, not one per publish, bounds
// the wait for acknowledgements: it fires at the oldest outstanding
// publish's deadline. A lost connection fails the epoch's outstanding
// publishes at once, as nats.go's jetstream does.

// subscribeReplies subscribes to connection i's reply subjects. The
// subscription ends with the connection.
func (b *Out) subscribeReplies(i int) error {
	c := &b.conns[i]
	inbox := c.nc.NewInbox()
	c.prefix = inbox + "."
	prefix := c.prefix
	_, err := c.nc.Subscribe(inbox+".*.*", func(m *nats.Msg) { b.onReply(i, prefix, m) })
	return err
}

// onReply is connection conn's reply subscription's handler (on its
// goroutine): it hands the publish's outcome to Run. A reply to a subject
// not of the form PREFIX.EPOCH.ENTRY is ignored.
func (b *Out) onReply(conn int, prefix string, m *nats.Msg) {
	if len(m.Subject) <= len(prefix) {
		return
	}
	epoch, slot, ok := replyToken(m.Subject[len(prefix):])
	if !ok {
		return
	}
	ev := event{kind: evReply, epoch: epoch, conn: conn, slot: slot}
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		// No responders: no stream captures the subject (any more).
		ev.err = jetstream.ErrNoStreamResponse
	} else {
		ev.dup, ev.err = parseAck(m.Data)
	}
	b.in.put(ev)
}

// onDisconnect is the connections' disconnection callback: the current
// epoch's outstanding publishes on that connection will have no reply, and
// the window is published again (as for any failure).
func (b *Out) onDisconnect(*nats.Conn, error) {
	b.in.put(event{kind: evDisconnect, epoch: b.epoch.Load()})
}

// replyToken parses "EPOCH.ENTRY" (decimal numbers).
func replyToken(s string) (epoch uint32, slot int, ok bool) {
	var n [2]uint64
	k, digits := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9' && digits < 10:
			n[k] = n[k]*10 + uint64(c-'0')
			digits++
		case c == '.' && k == 0 && digits > 0:
			k, digits = 1, 0
		default:
			return 0, 0, false
		}
	}
	if k != 1 || digits == 0 || n[0] > 1<<32-1 || n[1] > 1<<31-1 {
		return 0, 0, false
	}
	return uint32(n[0]), int(n[1]), true
}

// pubAckReply is the stream's reply to a publish, for encoding/json.
type pubAckReply struct {
	Stream    string              `json:"stream"`
	Duplicate bool                `json:"duplicate"`
	Error     *jetstream.APIError `json:"error"`
}

// parseAck parses a publish's reply: acknowledged (dup: as a duplicate),
// or the error (a *jetstream.APIError the stream sent, or
// jetstream.ErrInvalidJSAck), as nats.go's jetstream reports them.
func parseAck(data []byte) (dup bool, err error) {
	if dup, ok := parseAckFast(data); ok {
		return dup, nil
	}
	var r pubAckReply
	if err := json.Unmarshal(data, &r); err != nil {
		return false, jetstream.ErrInvalidJSAck
	}
	if r.Error != nil {
		return false, r.Error
	}
	if r.Stream == "" {
		return false, jetstream.ErrInvalidJSAck
	}
	return r.Duplicate, nil
}

// parseAckFast parses the acknowledgements the server sends,
// {"stream":"S","seq":N}, {"stream":"S","domain":"D","seq":N}, either
// ending with ,"duplicate": true}, and reports whether data is one (ok);
// anything else is left to encoding/json.
func parseAckFast(d []byte) (dup, ok bool) {
	d, ok = quoted(d, `{"stream":`)
	if !ok {
		return false, false
	}
	if bytes.HasPrefix(d, []byte(`,"domain":`)) {
		if d, ok = quoted(d, `,"domain":`); !ok {
			return false, false
		}
	}
	d, ok = cut(d, `,"seq":`)
	if !ok {
		return false, false
	}
	i := 0
	for i < len(d) && d[i] >= '0' && d[i] <= '9' {
		i++
	}
	if i == 0 {
		return false, false
	}
	d = d[i:]
	if len(d) == 1 && d[0] == '}' {
		return false, true
	}
	if d, ok = cut(d, `,"duplicate":`); !ok {
		return false, false
	}
	return true, string(d) == "true}"
}

// quoted cuts key (ending with its colon, optional spaces after it) and a
// non-empty JSON string without escapes from d's start.
func quoted(d []byte, key string) ([]byte, bool) {
	d, ok := cut(d, key)
	if !ok || len(d) < 2 || d[0] != '"' {
		return nil, false
	}
	i := bytes.IndexByte(d[1:], '"')
	if i <= 0 || bytes.IndexByte(d[1:1+i], '\\') >= 0 {
		return nil, false
	}
	return d[i+2:], true
}

// cut cuts prefix, and the spaces after it, from d's start.
func cut(d []byte, prefix string) ([]byte, bool) {
	if !bytes.HasPrefix(d, []byte(prefix)) {
		return nil, false
	}
	d = d[len(prefix):]
	for len(d) > 0 && d[0] == ' ' {
		d = d[1:]
	}
	return d, true
}

// now is the time on Out's clock (monotonic), for the acknowledgement
// timeout.
func (b *Out) now() int64 { return int64(time.Since(b.clock)) }

// arm starts the acknowledgement timer, if it is not running, for a
// publish sent now: it fires at most Timeout later.
func (b *Out) arm() {
	if !b.armed {
		b.armed = true
		b.timer.Reset(b.cfg.Timeout)
	}
}

// expire handles the timer's tick: it fails the epoch if its oldest
// outstanding publish has waited Timeout or longer, and otherwise starts
// the timer again for that publish's deadline (none outstanding: the next
// publish starts it).
func (b *Out) expire() {
	b.armed = false
	e := b.w.oldest()
	if e == nil || b.w.failed {
		return
	}
	if left := int64(b.cfg.Timeout) - (b.now() - e.at); left > 0 {
		b.armed = true
		b.timer.Reset(time.Duration(left))
		return
	}
	b.epochFailed(jetstream.ErrAsyncPublishTimeout)
}
