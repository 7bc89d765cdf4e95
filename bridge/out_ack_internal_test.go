package bridge

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/shmring/shmring/internal/testutil"
	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

// The acknowledgements' parsing: the shapes the server sends take the fast
// path, anything else encoding/json, with nats.go's jetstream's outcomes.
func TestParseAck(t *testing.T) {
	for _, tc := range []struct {
		data      string
		fast, dup bool
		err       error // nil: acknowledged
	}{
		{data: `{"stream":"S","seq":1}`, fast: true},
		{data: `{"stream":"ORDERS","seq":18446744073709551615}`, fast: true},
		{data: `{"stream":"S","seq":7,"duplicate": true}`, fast: true, dup: true},
		{data: `{"stream":"S","seq":7,"duplicate":true}`, fast: true, dup: true},
		{data: `{"stream":"S","domain":"hub","seq":3}`, fast: true},
		{data: `{"stream":"S","domain":"hub","seq":3,"duplicate": true}`, fast: true, dup: true},
		{data: `{"stream": "S", "seq": 4}`, fast: false},
		{data: `{"stream":"S","seq":5,"duplicate":false}`, fast: false},
		{data: `{"stream":"S","seq":9,"batch":"b","count":2}`, fast: false},
		{data: `{"stream":"S","seq":9,"val":"1"}`, fast: false},
		{data: `{"stream":"S\"x","seq":1}`, fast: false},
		{data: `{"seq":1,"stream":"S","duplicate":true}`, fast: false, dup: true},
		{data: `{"stream":"","seq":1}`, err: jetstream.ErrInvalidJSAck},
		{data: `{"seq":1}`, err: jetstream.ErrInvalidJSAck},
		{data: ``, err: jetstream.ErrInvalidJSAck},
		{data: `{"stream":"S","seq":}`, err: jetstream.ErrInvalidJSAck},
		{data: `{"stream":"S","seq":1`, err: jetstream.ErrInvalidJSAck},
		{data: `{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"S","seq":0}`,
			err: &jetstream.APIError{ErrorCode: 10077}},
		{data: `{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"}}`,
			err: jetstream.ErrStreamMessageExceedsMaximum},
	} {
		t.Run(tc.data, func(t *testing.T) {
			dup, ok := parseAckFast([]byte(tc.data))
			require.Equal(t, tc.fast, ok, "fast path")
			if ok {
				require.Equal(t, tc.dup, dup)
			}
			dup, err := parseAck([]byte(tc.data))
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.dup, dup)
		})
	}
	// An error the stream sends is its *jetstream.APIError, as the bridge's
	// refusal checks (refusedForGood) need.
	_, err := parseAck([]byte(`{"error":{"code":503,"err_code":10070,"description":"wrong last msg ID: r:0:1"}}`))
	var ae *jetstream.APIError
	require.ErrorAs(t, err, &ae)
	require.Equal(t, jsErrWrongLastMsgID, ae.ErrorCode)
	require.Equal(t, "wrong last msg ID: r:0:1", ae.Description)
}

func TestParseAckAllocs(t *testing.T) {
	data := []byte(`{"stream":"S","seq":123,"duplicate": true}`)
	require.Zero(t, testing.AllocsPerRun(100, func() {
		if _, err := parseAck(data); err != nil {
			panic(err)
		}
	}))
}

// Reply subjects' tokens: EPOCH.ENTRY, anything else ignored.
func TestReplyToken(t *testing.T) {
	for _, tc := range []struct {
		s     string
		epoch uint32
		slot  int
		ok    bool
	}{
		{"1.0", 1, 0, true},
		{"4294967295.2147483647", 1<<32 - 1, 1<<31 - 1, true},
		{"17.1023", 17, 1023, true},
		{"4294967296.0", 0, 0, false},
		{"1.2147483648", 0, 0, false},
		{"1", 0, 0, false},
		{"1.", 0, 0, false},
		{".1", 0, 0, false},
		{"1.2.3", 0, 0, false},
		{"1.x", 0, 0, false},
		{"-1.2", 0, 0, false},
		{"", 0, 0, false},
		{"99999999999.1", 0, 0, false},
	} {
		epoch, slot, ok := replyToken(tc.s)
		require.Equal(t, tc.ok, ok, tc.s)
		require.Equal(t, tc.epoch, epoch, tc.s)
		require.Equal(t, tc.slot, slot, tc.s)
	}
}

// Replies find their entry by epoch and index: a reply of an epoch given
// up, or to an entry not awaiting one, finds nothing, even once the entry
// holds another message; each entry's reply subject is built once per
// epoch.
func TestWindowReplies(t *testing.T) {
	var w window
	w.init(2, "S.x", []string{"_INBOX.t."}, false)
	e := w.push("r", true, 0, 1, 10, []byte("a"))
	w.address(e)
	require.Equal(t, "_INBOX.t.1.0", e.msg.Reply)
	require.Nil(t, w.mine(0, 1, 0), "not published yet")
	e.sent = true
	got := w.mine(0, 1, 0)
	require.Same(t, e, got)
	require.Nil(t, w.mine(0, 2, 0), "another epoch")
	require.Nil(t, w.mine(0, 1, 1), "another entry")
	require.Nil(t, w.mine(0, 1, 2), "out of range")
	require.Nil(t, w.mine(0, 1, -1), "out of range")

	// The epoch given up: the entry is published again in the next.
	w.renew()
	require.Nil(t, w.mine(0, 1, 0), "the failed epoch's reply")
	w.address(e)
	require.Equal(t, "_INBOX.t.2.0", e.msg.Reply)
	e.sent = true
	require.Same(t, e, w.mine(0, 2, 0))
	w.ack(e)
	require.Nil(t, w.mine(0, 2, 0), "acknowledged already")
	k, pos := w.pop()
	require.Equal(t, 1, k)
	require.Equal(t, uint64(10), pos)

	// Its slot holds the next messages; an old epoch's late reply for slot
	// 0 still finds nothing.
	e1 := w.push("r", true, 0, 2, 20, []byte("b"))
	e2 := w.push("r", true, 0, 3, 30, []byte("c"))
	require.Same(t, &w.e[0], e2)
	for _, x := range []*entry{e1, e2} {
		w.address(x)
		x.sent = true
	}
	require.Equal(t, "_INBOX.t.2.0", e2.msg.Reply, "built once per entry and epoch")
	require.Equal(t, "r:0:3", e2.id())
	require.Nil(t, w.mine(0, 1, 0))
	require.Same(t, e2, w.mine(0, 2, 0))
	require.Same(t, e1, w.oldest())
	w.ack(e1)
	require.Same(t, e2, w.oldest())
}

// TestFailWhileDisconnected: a publish refused because the connection is
// down (nats.go says "outbound buffer limit exceeded", the bridge having no
// reconnect buffer) is kept as a last error that says so; others as they are.
func TestFailWhileDisconnected(t *testing.T) {
	var b Out // no connection: Stats would ask it its status
	last := b.lastError
	b.fail(nats.ErrReconnectBufExceeded)
	require.Contains(t, last(), "not connected to NATS (reconnecting)")
	b.fail(fmt.Errorf("publish: %w", nats.ErrDisconnected))
	require.Contains(t, last(), "not connected to NATS (reconnecting)")
	b.fail(errors.New("maximum messages exceeded"))
	require.Equal(t, "maximum messages exceeded", last())
	require.Equal(t, uint64(3), b.errors.Load())
}

// With several connections each entry is published on its producer slot's
// (slot % connections) with that connection's reply prefix, a reply finds
// its entry only on that connection, and acknowledgements arriving out of
// ring order (as they do across connections) release only the prefix of
// the window whose every entry is acknowledged.
func TestWindowConns(t *testing.T) {
	var w window
	w.init(6, "S.x", []string{"_INBOX.a.", "_INBOX.b.", "_INBOX.c."}, false)
	// Ring order: slots 0, 1, 2, 3, 4, 1 at positions 10, 20, ... 60.
	slots := []int{0, 1, 2, 3, 4, 1}
	var es []*entry
	for k, slot := range slots {
		e := w.push("r", true, slot, uint64(k+1), uint64(10*(k+1)), []byte{byte(k)})
		w.address(e)
		e.sent = true
		es = append(es, e)
	}
	for k, e := range es {
		conn := slots[k] % 3
		require.Equal(t, conn, e.conn, "entry %d (slot %d)", k, slots[k])
		require.Equal(t, fmt.Sprintf("_INBOX.%c.1.%d", "abc"[conn], e.slot), e.msg.Reply, "entry %d", k)
		require.Nil(t, w.mine((conn+1)%3, 1, e.slot), "entry %d's reply on another connection", k)
		require.Same(t, e, w.mine(conn, 1, e.slot), "entry %d", k)
	}

	// Acknowledgements out of order: 1, 3, 4 first: nothing released.
	for _, k := range []int{1, 3, 4} {
		w.ack(w.mine(es[k].conn, 1, es[k].slot))
	}
	n, pos := w.pop()
	require.Zero(t, n, "entry 0 not acknowledged: nothing released")
	require.Zero(t, pos)
	require.Same(t, es[0], w.oldest())
	// Entry 0: 0 and 1 released (2 is not acknowledged).
	w.ack(es[0])
	n, pos = w.pop()
	require.Equal(t, 2, n)
	require.Equal(t, uint64(20), pos)
	require.Same(t, es[2], w.oldest())
	// Entry 5, then 2: 2 to 5 released.
	w.ack(es[5])
	n, _ = w.pop()
	require.Zero(t, n)
	w.ack(es[2])
	n, pos = w.pop()
	require.Equal(t, 4, n)
	require.Equal(t, uint64(60), pos)
	require.Zero(t, w.n)
	require.Nil(t, w.oldest())

	// A reused entry on another connection gets that connection's prefix
	// in the same epoch.
	e := w.push("r", true, 2, 7, 70, []byte("x"))
	require.Same(t, es[0], e, "the first entry reused: the window is circular")
	w.address(e)
	require.Equal(t, "_INBOX.c.1.0", e.msg.Reply)
}

// blockingJS is a JetStream whose Stream request waits for its context
// to end (a server that never answers), recording that it ended.
type blockingJS struct {
	jetstream.JetStream
	ended chan error
}

func (j blockingJS) Stream(ctx context.Context, _ string) (jetstream.Stream, error) {
	<-ctx.Done()
	j.ended <- ctx.Err()
	return nil, ctx.Err()
}

// The requests made in Run to explain a refusal (the stream's MaxMsgSize
// for a message too large; the stream's existence for "no responders")
// end with Run's context, not only after Timeout (an hour here): a
// canceled Run does not wait for a server that does not answer.
func TestRefusalRequestsEndWithRun(t *testing.T) {
	js := blockingJS{ended: make(chan error, 2)}
	b := &Out{cfg: OutConfig{Timeout: time.Hour, Subject: "S.x"}, js: js, stream: "S", ring: "/dev/shm/r"}
	var w window
	w.init(1, "S.x", []string{"_INBOX.t."}, false)
	e := w.push("r", true, 0, 1, 10, []byte("a"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err := b.refusedForGood(ctx, e, &jetstream.APIError{ErrorCode: jetstream.JSErrCodeStreamMessageExceedsMaximum, Description: "message size exceeds maximum allowed"})
	require.ErrorContains(t, err, `stream "S" refuses message r:0:1`)
	require.ErrorContains(t, err, "larger than its MaxMsgSize")
	require.ErrorIs(t, <-js.ended, context.Canceled)

	err = b.explain(ctx, jetstream.ErrNoStreamResponse)
	require.ErrorIs(t, err, jetstream.ErrNoStreamResponse)
	require.ErrorIs(t, <-js.ended, context.Canceled)
}

// An event for Run (an acknowledgement, here a tick) ends read's wait on an
// empty ring by cancelling the read's context, whatever the wait's policy:
// with Park the wait asks the hook only between sleeps (up to 100 ms), so
// without the cancellation the read would end at the hook's look after a
// sleep, its context not cancelled.
func TestReadWokenByEvent(t *testing.T) {
	r, err := ipc.Create(testutil.Name(t), ipc.Config{Capacity: 1 << 14})
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	b := &Out{ring: r.Path()}
	b.in.init(8)
	b.w.init(8, "S.x", []string{"_INBOX.t."}, false)
	b.cons, err = r.Consumer(&ipc.ConsumerConfig{Hold: true,
		Wait: ipc.Wait{Strategy: ipc.Park, PeerTimeout: 24 * time.Hour, Hook: b.waitHook}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.cons.Close() })

	done := make(chan error, 1)
	go func() { done <- b.read(context.Background()) }()
	require.Eventually(t, func() bool { return b.in.wake.Load() != nil }, time.Minute, time.Millisecond, "read arms the wake")
	b.in.put(event{kind: evTick})
	require.NoError(t, <-done)
	require.Error(t, b.rctx.Err(), "the event cancelled the read's context")
	require.Nil(t, b.in.wake.Load(), "read disarms the wake when it returns")
}
