package main

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// rawSend returns a send function publishing the messages of producers
// base to base+n-1 (send's k) to the server at url, each producer on its
// own connection with a bare client of the same shape for both
// protocols (so that the protocol is the only difference), every message
// with a Nats-Msg-Id:
//
//   - !fast ("raw-id"): one core publish per message, its reply subject an
//     inbox of the connection's; one PubAck per message; at most p.window
//     unacknowledged.
//   - fast ("fast-id"): a JetStream fast-ingest batch per producer
//     (nats-server 2.14+, the stream with AllowBatchPublish): the reply
//     subject PREFIX.BATCH.FLOW.fail.SEQ.OP.$FI; the server acknowledges
//     every N messages (flow control, {"type":"ack","seq":K,...}: messages
//     1..K persisted) and the commit with a PubAck; at most window beyond
//     the last flow acknowledgement.
//
// finish waits for every publish's acknowledgement (the fast batch
// committed: an end-of-batch commit) and closes the connections.
func rawSend(url string, window, base, n int, fast bool) (func(k, i int, msg []byte) error, func() error, error) {
	type pub struct {
		nc      *nats.Conn
		sub     *nats.Subscription
		prefix  string
		batch   string
		mu      sync.Mutex
		cond    *sync.Cond
		sent    uint64 // messages published (fast: the batch sequence of the last)
		acked   uint64 // messages acknowledged (fast: the last flow ack's sequence)
		done    bool   // fast: the commit's PubAck arrived
		err     error
		hdr     nats.Header
		scratch []byte
	}
	pubs := make([]*pub, n)
	closeAll := func() {
		for _, q := range pubs {
			if q != nil && q.nc != nil {
				q.nc.Close()
			}
		}
	}
	var batchN atomic.Int64
	for k := range pubs {
		q := &pub{}
		q.cond = sync.NewCond(&q.mu)
		pubs[k] = q
		var err error
		if q.nc, err = nats.Connect(url); err != nil {
			closeAll()
			return nil, nil, err
		}
		q.prefix = q.nc.NewRespInbox()
		q.batch = "b" + strconv.FormatInt(time.Now().UnixNano(), 36) + strconv.FormatInt(batchN.Add(1), 10)
		q.hdr = nats.Header{}
		q.sub, err = q.nc.Subscribe(q.prefix+".>", func(m *nats.Msg) {
			q.mu.Lock()
			defer q.mu.Unlock()
			d := m.Data
			switch {
			case bytes.Contains(d, []byte(`"error"`)):
				if q.err == nil {
					q.err = fmt.Errorf("%s", d)
				}
			case !fast:
				q.acked++
			case bytes.HasPrefix(d, []byte(`{"type":"ack"`)):
				i := bytes.Index(d, []byte(`"seq":`))
				j := bytes.IndexByte(d[i+6:], ',')
				n, _ := strconv.ParseUint(string(d[i+6:i+6+j]), 10, 64)
				if n > q.acked {
					q.acked = n
				}
			case bytes.HasPrefix(d, []byte(`{"type":"gap"`)):
				if q.err == nil {
					q.err = fmt.Errorf("gap: %s", d)
				}
			case bytes.Contains(d, []byte(`"stream"`)): // the commit's PubAck
				q.done = true
				q.acked = q.sent
			}
			q.cond.Broadcast()
		})
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		if err = q.nc.Flush(); err != nil {
			closeAll()
			return nil, nil, err
		}
	}
	window64 := uint64(window)
	publish := func(q *pub, k, i int, data []byte, op int) error {
		q.mu.Lock()
		for q.err == nil && q.sent-q.acked >= window64 {
			q.cond.Wait()
		}
		if q.err != nil {
			q.mu.Unlock()
			return q.err
		}
		q.sent++
		seq := q.sent
		q.mu.Unlock()
		r := append(q.scratch[:0], q.prefix...)
		r = append(r, '.')
		if fast {
			r = append(r, q.batch...)
			r = append(r, ".500.fail."...)
			r = strconv.AppendUint(r, seq, 10)
			r = append(r, '.')
			r = strconv.AppendInt(r, int64(op), 10)
			r = append(r, ".$FI"...)
		} else {
			r = strconv.AppendUint(r, seq, 10)
		}
		q.scratch = r
		if i >= 0 {
			q.hdr.Set("Nats-Msg-Id", strconv.Itoa(k)+":"+strconv.Itoa(i))
		} else {
			q.hdr.Del("Nats-Msg-Id")
		}
		return q.nc.PublishMsg(&nats.Msg{Subject: subject, Reply: string(r), Header: q.hdr, Data: data})
	}
	send := func(k, i int, msg []byte) error {
		op := 1 // append
		if i == 0 {
			op = 0 // start
		}
		return publish(pubs[k-base], k, i, msg, op)
	}
	finish := func() error {
		defer closeAll()
		var errs []error
		for j, q := range pubs {
			if fast {
				// An end-of-batch commit: one more sequence, no message stored.
				if err := publish(q, base+j, -1, nil, 3); err != nil {
					errs = append(errs, err)
					continue
				}
			}
			q.mu.Lock()
			deadline := time.AfterFunc(time.Minute, func() {
				q.mu.Lock()
				if q.err == nil {
					q.err = errors.New("acknowledgements not all received within a minute")
				}
				q.cond.Broadcast()
				q.mu.Unlock()
			})
			for q.err == nil && (q.acked < q.sent || (fast && !q.done)) {
				q.cond.Wait()
			}
			deadline.Stop()
			errs = append(errs, q.err)
			q.mu.Unlock()
		}
		return errors.Join(errs...)
	}
	return send, finish, nil
}

// The raw clients of rawSend, as throughputRun's raw argument (0: none).
const (
	rawAck  = 1 // raw-id: a PubAck per message
	rawFast = 2 // fast-id: fast-ingest batches
)
