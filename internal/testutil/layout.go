package testutil

import "github.com/shmring/shmring/ring"

// The ring-region offsets of the position words, for RingWord and
// SetRingWord, so that tests of packages above ipc (cmd/ringctl) scribble
// on a segment without importing package ring themselves.
const (
	ProducerPosition = ring.ProducerLine // the producer position (and the producer role's lock line)
	ConsumerPosition = ring.ConsumerLine // the consumer position (and the consumer role's lock line)
)
