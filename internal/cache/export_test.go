package cache

// OnJoin makes c call f each time a caller has joined a fill (a flight) in this process.
func OnJoin(c *Cache, f func()) { c.joined = f }
