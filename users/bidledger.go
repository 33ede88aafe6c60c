package users

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"slices"
	"strconv"
	"sync"
	"time"
)

// LotBids is what the gateway keeps of one user's bidding on one lot
// across restarts and nodes: the amounts sent (never sent again), the
// bids of the last minute (the rate limit), the last bids (the history
// the extension shows) and a bid being sent (Intent). Its owner writes it
// by compare-and-set before each bid leaves and again with the answer, so
// a node that takes the lot over knows every amount that may have
// reached Nellis.
type LotBids struct {
	Tried []int       `json:"tried,omitempty"`
	Rate  []time.Time `json:"rate,omitempty"` // oldest first
	Bids  []BidRecord `json:"bids,omitempty"` // oldest first
	// Intent is a bid recorded as about to be sent whose answer was not
	// recorded yet: nil once answered. Found by a node that did not send
	// it, it means the sender stopped between the two writes.
	Intent *BidIntent `json:"intent,omitempty"`
	// ClosesAt is the lot's close as the engine last knew it (zero when
	// unknown): the record is kept for the bid retention after it.
	ClosesAt time.Time `json:"closesAt,omitzero"`
}

// BidIntent is a bid about to be sent.
type BidIntent struct {
	Amount   int       `json:"amount"`
	Strategy string    `json:"strategy"`
	At       time.Time `json:"at"`
	Node     string    `json:"node,omitempty"` // who sent it; "" on a single node
}

// ErrBidConflict is BidLedger.CommitBids's answer when the lot's record
// changed since the revision given: another node wrote it, so this one
// may no longer bid on the lot on what it knew.
var ErrBidConflict = errors.New("users: the lot's bid record changed since it was read")

// ErrNoOwner means no gateway of the cluster owns a lot right now, so a
// bid on it cannot be placed (a handover is under way).
var ErrNoOwner = errors.New("users: no gateway owns the lot now")

// BidLedger keeps LotBids by user and lot.
type BidLedger interface {
	// LoadBids returns the lot's record and its revision; a missing
	// record is an empty one at revision 0.
	LoadBids(ctx context.Context, user string, productID int64) (LotBids, uint64, error)
	// CommitBids writes the lot's record if its stored revision is still
	// revision (0: none stored) and returns the new revision; otherwise
	// it writes nothing and returns an error matching ErrBidConflict.
	CommitBids(ctx context.Context, user string, productID int64, rec LotBids, revision uint64) (uint64, error)
}

// BidsKey is where StorageLedger keeps a user's record of a lot.
func BidsKey(user string, productID int64) string {
	return bidsDir + "/" + user + "/" + strconv.FormatInt(productID, 10) + ".json"
}

// storedBids is LotBids as StorageLedger writes it, with its revision.
type storedBids struct {
	Revision uint64 `json:"revision"`
	LotBids
}

// StorageLedger is the BidLedger of a single node over its Storage (Caddy's
// storage): the node is the only writer, so the compare-and-set is checked
// in memory, one lot at a time.
type StorageLedger struct {
	storage Storage
	// stripes are held across a record's load and store. A store is a
	// file written and synced (4 ms on this project's test VM): one lock
	// for every user would queue a closing lot's snipers behind each
	// other, so records of different users and lots take different
	// locks, as far as the stripes go.
	stripes [64]sync.Mutex
}

// lock takes the stripe of a user's record of a lot and returns its unlock.
func (l *StorageLedger) lock(user string, productID int64) func() {
	h := fnv.New32a()
	_, _ = h.Write([]byte(user))
	m := &l.stripes[(h.Sum32()^uint32(productID)^uint32(productID>>32))%uint32(len(l.stripes))]
	m.Lock()
	return m.Unlock
}

// NewStorageLedger returns the ledger writing to storage.
func NewStorageLedger(storage Storage) *StorageLedger {
	return &StorageLedger{storage: storage}
}

// LoadBids reads the lot's record. A record that cannot be read is an
// empty one at its revision, if that much can be read, so the next
// commit replaces it rather than failing forever.
func (l *StorageLedger) LoadBids(ctx context.Context, user string, productID int64) (LotBids, uint64, error) {
	defer l.lock(user, productID)()
	s, err := l.load(ctx, user, productID)
	return s.LotBids, s.Revision, err
}

func (l *StorageLedger) load(ctx context.Context, user string, productID int64) (storedBids, error) {
	data, err := l.storage.Load(ctx, BidsKey(user, productID))
	if errors.Is(err, fs.ErrNotExist) {
		return storedBids{}, nil
	}
	if err != nil {
		return storedBids{}, fmt.Errorf("users: load bids of %q on %d: %w", user, productID, err)
	}
	var s storedBids
	if json.Unmarshal(data, &s) != nil {
		var rev struct {
			Revision uint64 `json:"revision"`
		}
		_ = json.Unmarshal(data, &rev)
		return storedBids{Revision: rev.Revision}, nil
	}
	return s, nil
}

// CommitBids writes rec at the next revision if the stored one is still
// revision.
func (l *StorageLedger) CommitBids(ctx context.Context, user string, productID int64, rec LotBids, revision uint64) (uint64, error) {
	defer l.lock(user, productID)()
	cur, err := l.load(ctx, user, productID)
	if err != nil {
		return 0, err
	}
	if cur.Revision != revision {
		return 0, ErrBidConflict
	}
	data, err := json.Marshal(storedBids{Revision: revision + 1, LotBids: rec.Bounded()})
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if err := l.storage.Store(ctx, BidsKey(user, productID), data); err != nil {
		return 0, fmt.Errorf("users: store bids of %q on %d: %w", user, productID, err)
	}
	return revision + 1, nil
}

// Clone is a deep copy of the record.
func (b LotBids) Clone() LotBids {
	out := LotBids{Tried: slices.Clone(b.Tried), Rate: slices.Clone(b.Rate), Bids: slices.Clone(b.Bids), ClosesAt: b.ClosesAt}
	if b.Intent != nil {
		in := *b.Intent
		out.Intent = &in
	}
	return out
}

var _ BidLedger = (*StorageLedger)(nil)
