package ipc_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shmring/shmring/ipc"
	"github.com/stretchr/testify/require"
)

func TestRetry(t *testing.T) {
	calls := 0
	err := ipc.Retry(context.Background(), ipc.RetryOptions{Initial: time.Microsecond, Max: time.Millisecond}, func() error {
		calls++
		if calls < 5 {
			return ipc.ErrFull
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, 5, calls)

	calls = 0
	err = ipc.Retry(context.Background(), ipc.RetryOptions{Initial: time.Microsecond, Attempts: 3}, func() error { calls++; return ipc.ErrTimeout })
	require.ErrorIs(t, err, ipc.ErrTimeout)
	require.Equal(t, 3, calls)

	boom := errors.New("boom")
	err = ipc.Retry(context.Background(), ipc.RetryOptions{}, func() error { return boom })
	require.ErrorIs(t, err, boom, "not retried")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	err = ipc.Retry(ctx, ipc.RetryOptions{Initial: time.Millisecond}, func() error { return ipc.ErrFull })
	require.ErrorIs(t, err, ipc.ErrTimeout)
}

// TestRetryWithSequences: a producer dropping into a full ring retries with
// backoff while the consumer drains; a producer restarted mid-way resends
// its last message with the same sequence, and every message is delivered
// exactly once.
func TestRetryWithSequences(t *testing.T) {
	r := newRing(t, ipc.WithKind(ipc.MPSC), ipc.WithProducers(2), ipc.WithCapacity(1<<10), ipc.WithMaxMessage(64), ipc.WithSequences())
	c, err := r.Consumer()
	require.NoError(t, err)
	defer c.Close()
	var got []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for len(got) < 200 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			_, err := c.ReadBatch(ctx, 4, func(m []byte) { got = append(got, string(m)) })
			cancel()
			if err != nil {
				return
			}
			time.Sleep(100 * time.Microsecond) // a slow consumer: the ring fills
		}
	}()
	p, err := r.Producer(ipc.WithProducerID(1), ipc.WithPolicy(ipc.Drop))
	require.NoError(t, err)
	for i := 0; i < 200; i++ {
		if i == 100 { // restart: the new producer resends message 99 with its sequence
			require.NoError(t, p.Close())
			p, err = r.Producer(ipc.WithProducerID(1), ipc.WithPolicy(ipc.Drop))
			require.NoError(t, err)
			require.Equal(t, uint64(101), p.NextSeq())
			require.NoError(t, ipc.Retry(context.Background(), ipc.RetryOptions{}, func() error {
				return p.WriteSeq(context.Background(), 100, []byte("msg 99"))
			}))
		}
		seq := p.NextSeq()
		msg := []byte("msg " + itoa(i))
		require.NoError(t, ipc.Retry(context.Background(), ipc.RetryOptions{Initial: 10 * time.Microsecond}, func() error {
			return p.WriteSeq(context.Background(), seq, msg)
		}))
	}
	require.NoError(t, p.Close())
	<-done
	require.Len(t, got, 200)
	for i, m := range got {
		require.Equal(t, "msg "+itoa(i), m)
	}
	st, err := r.Stats()
	require.NoError(t, err)
	require.Equal(t, uint64(1), st.Duplicates)
	require.NotZero(t, st.Drops, "the ring was full at times: retries happened")
}

func itoa(i int) string {
	b := []byte{}
	if i == 0 {
		return "0"
	}
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}
