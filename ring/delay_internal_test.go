package ring

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDelayStampAfterBatchClock: a record committed after the batch's
// cached clock was read (a batch that caught up and loaded the producer
// position again) has its delay measured against a fresh clock, and a
// stamp that is still in the future (another boot's clock, a damaged word)
// is counted at 0 without moving the adaptive level. Before, either read as
// a delay of 0 and lowered a raised level: bridge's TestInDelayPressure
// failed now and then under load, its level lowered by the last batch.
func TestDelayStampAfterBatchClock(t *testing.T) {
	region := make([]byte, 1<<16)
	require.NoError(t, Format(region, Config{Capacity: 1 << 12, MaxMessage: 64, Timestamps: true}))
	r, err := Attach(region)
	require.NoError(t, err)
	require.NoError(t, r.SetTargetDelay(1, 1)) // 1 ns: every real delay is above it
	c, err := r.NewConsumer()
	require.NoError(t, err)
	raised := func() bool { return word32(r.region, offPressure).Load()&PressureDelay != 0 }

	old := nanotime() - 2e9
	now := old
	c.observeStamp(old-2e9, &now) // starts the interval
	c.observeStamp(old-1e9, &now) // same clock: not yet an interval
	now = nanotime()
	c.observeStamp(old-1e9, &now) // an interval later: raised
	require.True(t, raised())

	stale := old // a batch's clock, read before the record below was committed
	c.observeStamp(nanotime()-1e6, &stale)
	require.True(t, raised(), "a stamp after the batch's clock lowered the level")
	require.Greater(t, stale, old, "the clock was read again")

	future := nanotime() + 3600e9
	now = nanotime()
	c.observeStamp(future, &now)
	require.True(t, raised(), "a stamp from the future lowered the level")
	c.observeStamp(0, &now)
	require.True(t, raised(), "a zero stamp lowered the level")
	require.EqualValues(t, 6, word(r.region, offDelayCount).Load(), "every record counted")

	now = nanotime()
	c.observeStamp(now, &now) // a delay of 0, measured: below the target
	require.False(t, raised())
}
