package bridge

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// A fast batch's reply subject, after the connection's prefix, names the
// epoch, the batch and the message's sequence; anything else is refused.
func TestParseFastToken(t *testing.T) {
	epoch, batch, seq, ok := parseFastToken("AbCd123-7-42.128.fail.9001.1.$FI")
	require.True(t, ok)
	require.EqualValues(t, 7, epoch)
	require.EqualValues(t, 42, batch)
	require.EqualValues(t, 9001, seq)
	for _, s := range []string{"", "7.3", "tok-7.128.fail.1.0.$FI", "tok-x-1.128.fail.1.0.$FI", "tok-1-1.128.fail", "tok-1-1.128.fail.x.0.$FI", "tok-1-99999999999.1.fail.1.0.$FI"} {
		_, _, _, ok := parseFastToken(s)
		require.False(t, ok, "%q", s)
	}
}

// The replies nats-server 2.15 sends to a fast batch's messages (server/
// stream.go BatchFlowAck, BatchFlowGap, BatchFlowErr; jetstream_batching.go
// the commit's PubAck).
func TestParseFastReply(t *testing.T) {
	for _, tc := range []struct {
		data string
		kind fastReplyKind
		seq  uint64
		err  error
	}{
		{`{"type":"ack","seq":0,"msgs":250}`, fastAcked, 0, nil},
		{`{"type":"ack","seq":1500,"msgs":125}`, fastAcked, 1500, nil},
		{`{"stream":"S","seq":77,"batch":"t-1-2","count":64}`, fastAcked, 64, nil},
		{`{"stream":"S","domain":"D","seq":77,"duplicate": true,"batch":"t-1-2","count":1}`, fastAcked, 1, nil},
		{`{"type":"gap","last_seq":5,"seq":7}`, fastError, 0, errFastGap},
		{`{"type":"err","seq":12,"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`, fastError, 12, &jetstream.APIError{}},
		{`{"error":{"code":400,"err_code":10208,"description":"batch publish ID unknown"},"stream":"S","seq":0}`, fastError, 0, &jetstream.APIError{}},
		{`not json`, fastError, 0, jetstream.ErrInvalidJSAck},
		{`{"type":"ack","seq":`, fastError, 0, jetstream.ErrInvalidJSAck},
	} {
		kind, seq, err := parseFastReply([]byte(tc.data))
		require.Equal(t, tc.kind, kind, tc.data)
		require.Equal(t, tc.seq, seq, tc.data)
		switch want := tc.err.(type) {
		case nil:
			require.NoError(t, err, tc.data)
		case *jetstream.APIError:
			var ae *jetstream.APIError
			require.True(t, errors.As(err, &ae), "%s: %v", tc.data, err)
		default:
			require.ErrorIs(t, err, want, tc.data)
		}
	}
}
