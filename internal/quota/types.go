package quota

import "time"

// Class is one of Podio's quota classes: every call counts against the general hourly limit, and
// calls of the operations Podio marks "rate limited" against a second, smaller one.
type Class string

// The classes.
const (
	General     Class = "general"
	RateLimited Class = "rate_limited"
)

// Priority says whose call it is. Interactive calls (API requests) may spend the whole budget;
// background calls (jobs, pollers, cache refresh-ahead) only spend above the reserve.
type Priority int

// The priorities.
const (
	Interactive Priority = iota
	Background
)

// String is "interactive" or "background" (metrics label values).
func (p Priority) String() string {
	if p == Background {
		return "background"
	}
	return "interactive"
}

// Key names one budget: Podio counts calls per user per API key (client id).
type Key struct {
	ClientID string
	UserID   int64
}

// Decision is the answer of Admit.
type Decision struct {
	// Allowed: the call may be made now (and has been counted).
	Allowed bool
	// RetryAfter is how long until a call of this class and priority could be admitted (0 when
	// Allowed).
	RetryAfter time.Duration
	// Cooldown: refused because Podio answered 420 and its wait has not passed.
	Cooldown bool
	// Limit and Remaining describe the class's hourly budget after this decision.
	Limit, Remaining int
}
