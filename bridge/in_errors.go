package bridge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// refusal is a permissions violation that stops the in-bridge's Run: the
// server's asynchronous report (onAsyncError, on nats.go's goroutine),
// kept for Run, which it interrupts.
type refusal struct {
	mu     sync.Mutex
	err    error                   // the first refusal of this Run (nil none)
	cancel context.CancelCauseFunc // Run's context's (nil: no Run)
}

// begin arms the refusal for a Run whose context cancel ends: a refusal
// kept from before (a request between Runs) is forgotten, as the next
// request would meet it again if it still holds.
func (r *refusal) begin(cancel context.CancelCauseFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err, r.cancel = nil, cancel
}

// end disarms it when Run returns.
func (r *refusal) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancel = nil
}

// put keeps err (the first one) and interrupts Run.
func (r *refusal) put(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err == nil {
		r.err = err
	}
	if r.cancel != nil {
		r.cancel(err)
	}
}

// get is the refusal kept (nil none).
func (r *refusal) get() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// refusedRe finds what a permissions violation refused in the server's
// words: `Permissions Violation for Publish to "SUBJ"` or `for
// Subscription to "SUBJ"`.
var refusedRe = regexp.MustCompile(`(?i)for (publish|subscription) to "([^"]+)"`)

// refused returns what a permissions violation refused: "publish" or
// "subscribe", and the subject ("" for both when err does not say).
func refused(err error) (op, subject string) {
	m := refusedRe.FindStringSubmatch(err.Error())
	if m == nil {
		return "", ""
	}
	op = "publish"
	if strings.EqualFold(m[1], "subscription") {
		op = "subscribe"
	}
	return op, m[2]
}

// onAsyncError is the in-bridge connection's asynchronous error callback
// (on nats.go's goroutine). The server reports a permissions violation
// only so: the refused fetch request, acknowledgement or subscription gets
// no answer, and would look like a fetch or a request timing out, retried
// forever. One that leaves the bridge unable to work stops Run
// (permissionError); another is counted and kept as the last error.
func (b *In) onAsyncError(_ *nats.Conn, _ *nats.Subscription, err error) {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return
	}
	perr, stop := b.permissionError(err)
	if !stop {
		if _, subj := refused(err); strings.HasPrefix(subj, "$JS.API.CONSUMER.RESET.") {
			b.noReset.Store(true)
		}
		b.fail(perr)
		return
	}
	b.refusal.put(perr)
}

// permissionError is the error of a permissions violation the server
// reported (err), naming the subject refused and the permission to grant,
// and whether it stops Run: the fetches, the acknowledgements, the
// replies' subscription, the JetStream API requests a resync needs do (no
// retry cures it: the server's configuration must change); a refused
// consumer reset (optional: AckPolicy explicit) does not (onAsyncError
// has Run reset no more).
func (b *In) permissionError(err error) (error, bool) {
	op, subj := refused(err)
	url, s, c := b.cfg.URL, b.cfg.Stream, b.cfg.Consumer
	const kept = "nothing is lost: what the stream delivered and the bridge did not acknowledge is delivered again, and what the ring holds already skipped"
	grant := func(what, perm, subject string) error {
		return fmt.Errorf("bridge: the NATS server at %s refuses the in-bridge's %s (a permissions violation): grant the bridge's user permission to %s to %q "+
			"(nats-server authorization: the user's permissions, %s); %s: %w", url, what, perm, subject, perm, kept, err)
	}
	api := "$JS.API."
	switch {
	case op == "subscribe" && strings.HasPrefix(subj, "_INBOX."):
		return grant("subscription to "+subj+", where its fetches and requests are answered", "subscribe", "_INBOX.>"), true
	case op == "publish" && strings.HasPrefix(subj, api+"CONSUMER.MSG.NEXT."):
		return grant(fmt.Sprintf("fetches from consumer %q of stream %q (publish to %q)", c, s, subj), "publish", subj), true
	case op == "publish" && strings.HasPrefix(subj, "$JS.ACK."):
		return grant(fmt.Sprintf("acknowledgements to consumer %q of stream %q (publish to %q)", c, s, subj), "publish", "$JS.ACK."+s+"."+c+".>"), true
	case op == "publish" && strings.HasPrefix(subj, api+"CONSUMER.RESET."):
		return fmt.Errorf("bridge: the NATS server at %s refuses the in-bridge's reset of consumer %q (a permissions violation for publish to %q): "+
			"the deliveries a dead predecessor left pending are redelivered after AckWait instead (and skipped); grant the bridge's user permission to publish to %q "+
			"to release them at once: %w", url, c, subj, subj, err), false
	case op == "publish" && strings.HasPrefix(subj, api):
		return grant(fmt.Sprintf("JetStream API request %q (its requests read the stream's and the consumer's state, and the stream's messages at a resync)", subj), "publish", subj), true
	}
	return fmt.Errorf("bridge: the NATS server at %s refuses an operation of the in-bridge's (a permissions violation): the bridge publishes to "+
		"$JS.API.> (its requests, its fetches) and $JS.ACK.%s.%s.> (its acknowledgements), and subscribes to _INBOX.>: grant those to its user: %w", url, s, c, err), false
}

// newInPermissionError is NewIn's error when its requests failed (err)
// and the server had refused one of them, or their replies' subscription:
// the refusal is the cause. It reads the server's pending reports first
// (a round trip: the server sends its -ERR before its PONG). nil: no
// refusal.
func (b *In) newInPermissionError(err error) error {
	_ = b.nc.FlushTimeout(b.cfg.Timeout)
	le := b.nc.LastError()
	if !errors.Is(le, nats.ErrPermissionViolation) {
		return nil
	}
	perr, _ := b.permissionError(le)
	return fmt.Errorf("%w (and so: %v)", perr, err)
}

// errRecreated is wrapped by Run's error when the stream was deleted and
// created again under the bridge: its sequences started again, below the
// ring's, so every message up to the ring's last would be taken for one the
// ring holds. Run stops for it (fatal).
var errRecreated = fmt.Errorf("the stream was recreated (its sequences started again): %w", fs.ErrInvalid)

// missingError is resync's error when the consumer's state could not be
// read (err): a missing consumer or stream is named, with what to do;
// with the consumer missing, the stream is looked at (checkStream), as it
// may be missing too, or recreated (errRecreated). (Once the consumer is
// back, resync finds it created anew, and looks at the stream again.)
func (b *In) missingError(ctx context.Context, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return b.streamMissing(err)
	case errors.Is(err, jetstream.ErrConsumerNotFound):
		if serr := b.checkStream(ctx); serr != nil {
			return serr
		}
		s, c := b.cfg.Stream, b.cfg.Consumer
		return fmt.Errorf("bridge: consumer %q of stream %q not found on %s (deleted?): the bridge retries; create it again "+
			"(nats consumer add %s %s --pull --ack all, or restart the bridge with InConfig.CreateConsumer): it goes on after the ring's last message: %w",
			c, s, b.cfg.URL, s, c, err)
	}
	return fmt.Errorf("bridge: consumer %s/%s: %w", b.cfg.Stream, b.cfg.Consumer, err)
}

// streamMissing is the error for the stream not found (err) while the
// bridge runs.
func (b *In) streamMissing(err error) error {
	return fmt.Errorf("bridge: stream %q not found on %s (deleted?): the bridge retries; a stream restored with its sequences "+
		"(nats stream restore) is taken up where the ring is; one created anew starts its sequences again, and the bridge stops then: "+
		"bridge it into a new ring: %w", b.cfg.Stream, b.cfg.URL, err)
}

// checkStream reads the stream's state and fails if it is missing
// (streamMissing), or if it is not the one NewIn found: created at
// another time, or ending below the ring's last message (errRecreated,
// which stops Run).
func (b *In) checkStream(ctx context.Context) error {
	tctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	info, err := b.str.Info(tctx)
	cancel()
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return b.streamMissing(err)
	case err != nil:
		return apiError(b.cfg.URL, fmt.Sprintf("stream %q", b.cfg.Stream), err)
	case !info.Created.Equal(b.created):
		return fmt.Errorf("bridge: stream %q on %s was deleted and created again since the bridge started (created %s, not %s; it ends at sequence %d, "+
			"the ring holds up to %d): its messages would be taken for those the ring holds; bridge the new stream into a new ring "+
			"(this ring's messages are intact): %w", b.cfg.Stream, b.cfg.URL, info.Created.UTC().Format(time.RFC3339Nano),
			b.created.UTC().Format(time.RFC3339Nano), info.State.LastSeq, b.high, errRecreated)
	case info.State.LastSeq < b.high:
		return fmt.Errorf("bridge: stream %q on %s ends at sequence %d, below the ring's last message, %d, though created when the bridge started "+
			"(%s): it was set back (restored from an older backup?), and its next messages would be taken for those the ring holds; "+
			"bridge it into a new ring (this ring's messages are intact): %w", b.cfg.Stream, b.cfg.URL, info.State.LastSeq, b.high,
			b.created.UTC().Format(time.RFC3339Nano), errRecreated)
	}
	return nil
}
