package ring

// FastRead reports whether c's reads take the fast path (Consumer.fast).
func FastRead(c *Consumer) bool { return c.fast }

// SlowReads turns c's fast read path off: its reads take the general path,
// for tests that compare the two.
func SlowReads(c *Consumer) { c.plain = false; c.setFast() }
