package sseupstream

import "math/rand/v2"

func randInt64N(n int64) int64 { return rand.Int64N(n) }
