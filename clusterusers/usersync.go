package clusterusers

import (
	"encoding/json"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/nellis-edge/gateway/users"
)

// A node that starts following a user (their first socket there) would
// otherwise show nothing from the owners of the user's lots until each
// says something new, which for a user winning a quiet lot may be never.
// So it asks every node on <prefix>.usersync, one subscription per node,
// and the owners send what they last said on the user's subject.

// syncRequest asks the owners of a user's lots for what they last said to
// the user: a node started following the user.
type syncRequest struct {
	Node string `json:"node"`
	User string `json:"user"`
}

func (n *UserNews) syncSubject() string { return n.opts.Prefix + ".usersync" }

// syncAD binds a sync request's seal to its purpose: it names no user, so
// the seal of one user's news never opens as it.
const syncAD = "\x00usersync"

// askOwners asks every node to send name's news again (resend).
func (n *UserNews) askOwners(name string) {
	data, err := json.Marshal(syncRequest{Node: n.opts.Node, User: name})
	if err != nil {
		return
	}
	sealed, err := users.SealCookies(n.key(), syncAD, string(data))
	if err == nil && len(sealed) <= maxNewsBytes {
		_ = n.nc.Publish(n.syncSubject(), []byte(sealed))
	}
}

// resend answers another node's sync request: what this node last said
// to the user on the lots it owns goes out again on the user's subject.
func (n *UserNews) resend(m *nats.Msg) {
	defer func() {
		if v := recover(); v != nil {
			n.log().Error("panic sending a user's news again", zap.Any("panic", v), zap.StackSkip("stack", 1))
		}
	}()
	if len(m.Data) > maxNewsBytes {
		return
	}
	plain, err := users.OpenCookies(n.key(), syncAD, string(m.Data))
	if err != nil {
		return
	}
	var req syncRequest
	if json.Unmarshal([]byte(plain), &req) != nil || req.Node == n.opts.Node || req.User == "" {
		return
	}
	states, lots := n.opts.Current(req.User)
	for _, s := range states {
		n.PublishAutoBid(s) // the lots this node owns only
	}
	for _, s := range lots {
		if n.opts.Owns(s.ProductID) {
			n.PublishUserState(req.User, s)
		}
	}
}
