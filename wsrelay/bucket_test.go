package wsrelay

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	var b bucket
	for i := range 3 {
		if !b.allow(now, 2, 3) {
			t.Fatalf("burst message %d refused", i)
		}
	}
	if b.allow(now, 2, 3) {
		t.Fatal("fourth message at once allowed")
	}
	now = now.Add(500 * time.Millisecond) // one token at 2/s
	if !b.allow(now, 2, 3) || b.allow(now, 2, 3) {
		t.Fatal("refill after 500ms is not exactly one token")
	}
	now = now.Add(time.Hour)
	for i := range 3 {
		if !b.allow(now, 2, 3) {
			t.Fatalf("refilled burst message %d refused", i)
		}
	}
	if b.allow(now, 2, 3) {
		t.Fatal("refill exceeded the burst")
	}
	if now = now.Add(-time.Minute); b.allow(now, 2, 3) {
		t.Fatal("a clock going back refilled the bucket")
	}
}
