package relay

import "time"

// bucket is a token bucket that paces one client's lines: it holds up to
// burst tokens, gains rate tokens a second, and each line spends one. A
// rate of zero or less means no limit.
type bucket struct {
	tokens float64   // tokens in the bucket, at most burst
	last   time.Time // when tokens was last brought up to date
}

// wait brings the bucket up to date at time now and returns zero if it holds
// a token, or else how long until it will.
func (b *bucket) wait(now time.Time, rate, burst float64) time.Duration {
	if rate <= 0 {
		return 0
	}

	if b.last.IsZero() {
		b.tokens = burst
	} else {
		b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	}
	b.last = now

	if b.tokens >= 1 {
		return 0
	}

	return max(time.Duration((1-b.tokens)/rate*float64(time.Second)), 1)
}

// spend takes the token that wait found for a line. Without a limit there
// are no tokens, and nothing to take.
func (b *bucket) spend() {
	if b.tokens >= 1 {
		b.tokens--
	}
}
