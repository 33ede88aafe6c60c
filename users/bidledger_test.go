package users

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/internal/memstorage"
)

// slowStorage holds every store of alice's records until release is
// closed: a disk sync that takes its time.
type slowStorage struct {
	*memstorage.Storage
	release chan struct{}
	held    chan struct{} // gets a value when a store of alice's starts waiting
}

func (s slowStorage) Store(ctx context.Context, key string, value []byte) error {
	if strings.Contains(key, "/alice/") {
		s.held <- struct{}{}
		<-s.release
	}
	return s.Storage.Store(ctx, key, value)
}

// Snipers of a closing lot record their bids at the same moment: one
// user's slow store must not hold another user's bid back.
func TestStorageLedgerCommitsOfOtherUsersDoNotWait(t *testing.T) {
	st := slowStorage{Storage: memstorage.New(), release: make(chan struct{}), held: make(chan struct{}, 1)}
	l := NewStorageLedger(st)
	ctx := t.Context()
	aliceDone := make(chan error, 1)
	go func() {
		_, err := l.CommitBids(ctx, "alice", 7, LotBids{Tried: []int{10}}, 0)
		aliceDone <- err
	}()
	<-st.held
	bobDone := make(chan error, 1)
	go func() {
		_, err := l.CommitBids(ctx, "bob", 7, LotBids{Tried: []int{11}}, 0)
		bobDone <- err
	}()
	select {
	case err := <-bobDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(2 * time.Second):
		close(st.release)
		t.Fatal("bob's bid record waited for alice's store")
	}
	close(st.release)
	if err := <-aliceDone; err != nil {
		t.Fatal(err)
	}
	for user, want := range map[string]int{"alice": 10, "bob": 11} {
		rec, rev, err := l.LoadBids(ctx, user, 7)
		if err != nil || rev != 1 || len(rec.Tried) != 1 || rec.Tried[0] != want {
			t.Errorf("%s: %+v at revision %d, %v; want tried %v at revision 1", user, rec, rev, err, want)
		}
	}
}
