package bridge

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// The out-bridge's checks of what the stream can never take: a message
// larger than the server or the stream accepts (upfront in NewOut, and in
// Run, where such a message stops the bridge, staying in the ring), and,
// with StrictOrder, another writer of the stream.

// jsErrWrongLastMsgID is JetStream's error code for a publish whose
// Nats-Expected-Last-Msg-Id is not the stream's last Msg-Id ("wrong last
// msg ID: LAST"); nats.go has no constant for it.
const jsErrWrongLastMsgID jetstream.ErrorCode = 10070

// wrongLastPrefix starts the description of that error, before LAST.
const wrongLastPrefix = "wrong last msg ID: "

// headerBound is the most bytes of headers the bridge adds to a message:
// NATS/1.0, Nats-Msg-Id (ID, slot and sequence, or position), and with
// StrictOrder Nats-Expected-Last-Msg-Id, as nats.go encodes them.
func headerBound(id string, strict bool) int {
	idMax := len(id) + len(":18446744073709551615:18446744073709551615")
	n := len("NATS/1.0\r\n") + len(msgIDHeader+": \r\n") + idMax + len("\r\n")
	if strict {
		n += len(expLastIDHeader+": \r\n") + idMax
	}
	return n
}

// checkSize refuses a ring whose largest message (maxMsg) could not be
// published: the server's max_payload, or the stream's MaxMsgSize, less
// the bridge's headers, is smaller.
func (b *Out) checkSize(ctx context.Context, maxMsg uint64) error {
	hdr := int64(headerBound(b.cfg.ID, b.cfg.StrictOrder))
	check := func(limit int64, what, fix string) error {
		if limit <= 0 || int64(maxMsg)+hdr <= limit {
			return nil
		}
		fit := max(limit-hdr, 0)
		return fmt.Errorf("bridge: ring %s takes messages of up to %d bytes (its MaxMessage), but %s is %d bytes, and the bridge adds up to %d bytes of headers: "+
			"a message over %d bytes could never be published and would stop Run; create the ring with a MaxMessage of at most %d (ringctl create --max-msg %d), or %s: %w",
			b.ring, maxMsg, what, limit, hdr, fit, fit, fit, fix, fs.ErrInvalid)
	}
	if err := check(b.api().MaxPayload(), "the server's max_payload at "+b.cfg.URL, "raise the server's max_payload (nats-server configuration)"); err != nil {
		return err
	}
	return check(b.maxMsgSize, fmt.Sprintf("stream %q's MaxMsgSize", b.stream),
		fmt.Sprintf("raise the stream's MaxMsgSize (nats stream edit %s --max-msg-size N)", b.stream))
}

// describe names an entry's message for errors: its Msg-Id (with the
// producer slot and sequence, or the position), its ring position and size.
func (b *Out) describe(e *entry) string {
	return fmt.Sprintf("message %s (ring %s, its record ending at position %d, %d bytes)", e.id(), b.ring, e.pos, len(e.msg.Data))
}

// refusedForGood returns the error that stops Run when the stream refuses
// e's publish in a way no retry can cure (nil otherwise): the message is
// larger than the stream's MaxMsgSize; with StrictOrder, another writer.
// ctx is Run's: the request for the stream's limit ends with it.
func (b *Out) refusedForGood(ctx context.Context, e *entry, err error) error {
	var ae *jetstream.APIError
	if !errors.As(err, &ae) {
		return nil
	}
	switch ae.ErrorCode {
	case jetstream.JSErrCodeStreamMessageExceedsMaximum:
		limit := "its MaxMsgSize"
		ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
		defer cancel()
		if str, serr := b.js.Stream(ctx, b.stream); serr == nil {
			limit = fmt.Sprintf("its MaxMsgSize, %d bytes with the headers", str.CachedInfo().Config.MaxMsgSize)
		}
		return fmt.Errorf("bridge: stream %q refuses %s: larger than %s: raise the stream's MaxMsgSize (nats stream edit %s --max-msg-size N), "+
			"or create the ring with a smaller MaxMessage (ringctl create --max-msg); the message stays in the ring, unreleased: %w",
			b.stream, b.describe(e), limit, b.stream, err)
	case jsErrWrongLastMsgID:
		return b.otherWriter(e, strings.TrimPrefix(ae.Description, wrongLastPrefix), err)
	}
	return nil
}

// otherWriter tells, from the stream's last Msg-Id that a StrictOrder
// publish's expectation did not match, whether another writer stored
// messages in the stream (the error stopping Run) or the mismatch is the
// bridge's own (a refused publish before it: nil, retried). The stream's
// content before this bridge stored anything is not taken for another
// writer (a previous ring's messages, an empty stream); after, a last
// Msg-Id not of this ring's form is. A last message without Msg-Id (or a
// purged stream) is taken for another writer the second time, with
// messages of the bridge stored in between.
func (b *Out) otherWriter(e *entry, last string, err error) error {
	if b.stored == 0 || strings.HasPrefix(last, b.cfg.ID+":") {
		return nil
	}
	if last == "" {
		if b.emptyAt < 0 || b.emptyAt == b.stored {
			b.emptyAt = b.stored
			return nil
		}
		last = "none (a message without Nats-Msg-Id, or the stream purged)"
	} else {
		last = fmt.Sprintf("%q", last)
	}
	return fmt.Errorf("bridge: stream %q has another writer: publishing %s after %q, its last message's Nats-Msg-Id is %s, not one of ring %s's (ID %q); "+
		"OutConfig.StrictOrder (--strict-order) checks the order against the stream's last message and needs the bridge to be its only writer: "+
		"give the bridge a stream of its own, stop the other writer, or turn StrictOrder off (each message still lands once; one refused may land up to Window places late); "+
		"the messages not acknowledged stay in the ring: %w",
		b.stream, b.describe(e), e.expected(), last, b.ring, b.cfg.ID, err)
}

// explain returns err, the first failure of an epoch, with its cause where
// the stream can tell it: "no responders" to a publish (no stream captures
// the subject) is the stream deleted when a request for it finds none. ctx
// is Run's.
func (b *Out) explain(ctx context.Context, err error) error {
	if !errors.Is(err, jetstream.ErrNoStreamResponse) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	_, serr := b.js.Stream(ctx, b.stream)
	switch {
	case errors.Is(serr, jetstream.ErrStreamNotFound):
		return fmt.Errorf("stream %q not found (deleted?): nothing captures %q any more; create it again (nats stream add %s --subjects %s), "+
			"the messages wait in the ring: %w", b.stream, b.cfg.Subject, b.stream, b.cfg.Subject, err)
	case serr == nil:
		return fmt.Errorf("stream %q exists but did not answer (no responders: its leader changing, or its subjects edited to leave out %q): %w",
			b.stream, b.cfg.Subject, err)
	}
	return err
}
