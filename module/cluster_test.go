package module

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/nellis-edge/gateway/cluster"
	"github.com/nellis-edge/gateway/hub"
	"github.com/nellis-edge/gateway/internal/natstest"
)

const clusterKeyHex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

func TestClusterParses(t *testing.T) {
	t.Setenv("NELLIS_TEST_NATS_TOKEN", "s3cret-nats-token")
	cfg, err := adapt(t, `{
	nellis {
		auth_token tok-a
		cookie_key `+clusterKeyHex+`
		cluster nats://n1:4222 tls://n2:4222 {
			node gw-1
			token {env.NELLIS_TEST_NATS_TOKEN}
			tls_ca /etc/nellis/ca.pem
			prefix edge
			replicas 3
			lease 5s
			history_age 2h
			remote_users 500
		}
	}
}
`)
	if err != nil {
		t.Fatalf("adapt: %v", err)
	}
	app := nellisJSON(t, cfg)
	want := &cluster.Config{
		Servers: []string{"nats://n1:4222", "tls://n2:4222"}, Node: "gw-1", Token: "{env.NELLIS_TEST_NATS_TOKEN}",
		TLSCA: "/etc/nellis/ca.pem", Prefix: "edge", Replicas: 3, Lease: 5e9, HistoryAge: 2 * 3600e9,
		RemoteUsers: 500,
	}
	if !reflect.DeepEqual(app.Cluster, want) {
		t.Fatalf("cluster: %+v\nwant      %+v", app.Cluster, want)
	}
	// The token stays a placeholder in the JSON and is read at load.
	raw, _ := json.Marshal(cfg)
	if strings.Contains(string(raw), "s3cret") {
		t.Fatal("the adapted JSON holds the NATS token")
	}
	bus, err := app.clusterConfig(64)
	if err != nil {
		t.Fatal(err)
	}
	if bus.Token != "s3cret-nats-token" || bus.History != 64 {
		t.Fatalf("resolved config: token resolved %v, history %d", bus.Token == "s3cret-nats-token", bus.History)
	}

	// Without `cluster` the app has none: nothing of it runs.
	cfg, err = adapt(t, "{\n\tnellis {\n\t\tauth_token t\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if nellisJSON(t, cfg).Cluster != nil {
		t.Fatal("a config without cluster has one")
	}
	// user <name> <password>, the same block twice.
	cfg, err = adapt(t, "{\n\tnellis {\n\t\tauth_token t\n\t\tcluster nats://n1:4222 {\n\t\t\tuser edge pw\n\t\t}\n\t}\n\tnellis {\n\t\tcluster nats://n1:4222 {\n\t\t\tuser edge pw\n\t\t}\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if c := nellisJSON(t, cfg).Cluster; c.User != "edge" || c.Password != "pw" {
		t.Fatalf("user: %+v", c)
	}
}

// Each mistake in the cluster block fails adaptation naming its line and
// never a secret.
func TestClusterConfigErrors(t *testing.T) {
	const head = "{\n\tnellis {\n\t\tauth_token t\n\t\tcluster nats://n1:4222 {\n" // the mistake goes on line 5
	const tail = "\t\t}\n\t}\n}\n"
	for name, tc := range map[string]struct{ src, want string }{
		"no url":           {"{\n\tnellis {\n\t\tauth_token t\n\t\tcluster {\n\t\t}\n\t}\n}\n", "Caddyfile:4: cluster: want at least one NATS URL"},
		"http url":         {"{\n\tnellis {\n\t\tauth_token t\n\t\tcluster http://n1 {\n\t\t}\n\t}\n}\n", `Caddyfile:4: cluster: server "http://n1": scheme must be nats, tls, ws or wss`},
		"url with secret":  {"{\n\tnellis {\n\t\tauth_token t\n\t\tcluster nats://s3cret@n1 {\n\t\t}\n\t}\n}\n", "Caddyfile:4: cluster: a server URL holds credentials"},
		"unknown":          {head + "\t\t\tleese 3s\n" + tail, `Caddyfile:5: cluster: unrecognized subdirective "leese"`},
		"short lease":      {head + "\t\t\tlease 500ms\n" + tail, `Caddyfile:5: cluster lease: must be 1s to 30s, got "500ms"`},
		"bad lease":        {head + "\t\t\tlease soon\n" + tail, `Caddyfile:5: cluster lease: invalid duration "soon"`},
		"short age":        {head + "\t\t\thistory_age 30s\n" + tail, `Caddyfile:5: cluster history_age: must be at least 1m0s, got "30s"`},
		"replicas":         {head + "\t\t\treplicas 9\n" + tail, `Caddyfile:5: cluster replicas: want 1 to 5, got "9"`},
		"remote users":     {head + "\t\t\tremote_users 0\n" + tail, `Caddyfile:5: cluster remote_users: want a positive count, got "0"`},
		"bad node":         {head + "\t\t\tnode gw.1\n" + tail, `Caddyfile:5: cluster: node "gw.1": want 1 to 64 letters`},
		"bad prefix":       {head + "\t\t\tprefix a.b\n" + tail, `Caddyfile:5: cluster: prefix "a.b"`},
		"empty token":      {head + "\t\t\ttoken {$NELLIS_TEST_UNSET_TOKEN}\n" + tail, "Caddyfile:5: cluster token: want exactly one argument, got 0"},
		"user no password": {head + "\t\t\tuser edge\n" + tail, "Caddyfile:5: cluster user: want <name> <password>, got 1 arguments"},
		"two auths":        {head + "\t\t\ttoken s3cret-tok\n\t\t\tuser edge s3cret-pw\n" + tail, "Caddyfile:7: cluster: give at most one of creds, token and user"},
		"nested block":     {head + "\t\t\tlease 3s {\n\t\t\t\tx\n\t\t\t}\n" + tail, "Caddyfile:6: cluster lease: takes no block"},
		"two clusters": {
			"{\n\tnellis {\n\t\tauth_token t\n\t\tcluster nats://n1:4222 {\n\t\t\ttoken s3cret-a\n\t\t}\n\t}\n\tnellis {\n\t\tcluster nats://n1:4222 {\n\t\t\ttoken s3cret-b\n\t\t}\n\t}\n}\n",
			"Caddyfile:11: cluster: given twice with different values",
		},
	} {
		t.Run(name, func(t *testing.T) {
			msg := adaptErrorAt(t, tc.src, tc.want)
			if strings.Contains(msg, "s3cret") {
				t.Errorf("error shows a secret: %q", msg)
			}
		})
	}
}

// `caddy validate` checks the cluster without dialling NATS, and wants
// cookie_key with it.
func TestClusterValidateNeverDialsNATS(t *testing.T) {
	loadCaddy(t, noGatewayConfig) // no running gateway holds a cluster
	addr, dials := dialCounter(t)
	app := map[string]any{
		"users":      []map[string]string{{"name": "default", "token": "t"}},
		"cookie_key": clusterKeyHex,
		"cluster":    map[string]any{"servers": []string{"nats://" + addr}, "node": "gw-1"},
	}
	if err := validate(t, app); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if n := dials.Load(); n != 0 {
		t.Errorf("validate dialled NATS %d times", n)
	}
	delete(app, "cookie_key")
	if err := validate(t, app); err == nil || !strings.Contains(err.Error(), "cluster needs cookie_key") {
		t.Errorf("cluster without cookie_key: %v", err)
	}
	app["cookie_key"] = clusterKeyHex
	app["cluster"] = map[string]any{"servers": []string{"nats://" + addr}, "node": "gw-1", "lease": "100ms"}
	if err := validate(t, app); err == nil || !strings.Contains(err.Error(), "lease must be 1s to 30s") {
		t.Errorf("JSON lease of 100ms: %v", err)
	}
}

// startTestNATS runs an embedded NATS server with JetStream for one test.
func startTestNATS(t *testing.T) string {
	t.Helper()
	return natstest.Start(t).URL()
}

// loadJSON loads an adapted Caddyfile into the test's Caddy, returning
// the error a reload would get.
func loadJSON(t *testing.T, src string) error {
	t.Helper()
	cfg, err := adapt(t, src)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return caddy.Load(raw, true)
}

// unloadAfterRefusal loads the config without the gateway in process, as
// the reloads it follows were made. Right after a refused reload Caddy's
// admin endpoint on :2999 may be down for a few milliseconds (the refused
// config's endpoint is stopped with it): caddytest's first request found
// nothing listening, or a connection closed under it, in 2 of 45 loaded
// runs, and loadCaddy failed the test though the gateway had done all it
// should.
func unloadAfterRefusal(t *testing.T) {
	t.Helper()
	if err := loadJSON(t, noGatewayConfig); err != nil {
		t.Fatalf("loading a config without the gateway: %v", err)
	}
}

// The first start connects and announces the node; a reload that keeps
// `cluster` keeps the connection, one that adds, changes or removes it
// fails and leaves the running config as it was.
func TestClusterReloadNeedsRestart(t *testing.T) {
	url := startTestNATS(t)
	gateway := func(cluster string) string {
		return fmt.Sprintf("{\n\tadmin localhost:2999\n\tnellis {\n\t\tauth_token %s\n\t\tcookie_key %s\n%s\t}\n}\n:9080 {\n\tbind 127.0.0.1\n\tnellis_ws /ws\n}\n", testToken, clusterKeyHex, cluster)
	}
	withCluster := func(lease string) string {
		return fmt.Sprintf("\t\tcluster %s {\n\t\t\tnode gw-test\n\t\t\tlease %s\n\t\t}\n", url, lease)
	}
	defer loadCaddy(t, noGatewayConfig)

	if err := loadJSON(t, gateway("")); err != nil {
		t.Fatal(err)
	}
	if runningCluster() != nil {
		t.Fatal("a config without cluster made a bus")
	}
	if err := loadJSON(t, gateway(withCluster("2s"))); err == nil || !strings.Contains(err.Error(), "restart to change cluster") {
		t.Fatalf("adding cluster by a reload: got %v, want restart to change cluster", err)
	}
	unloadAfterRefusal(t)

	if err := loadJSON(t, gateway(withCluster("2s"))); err != nil {
		t.Fatal(err)
	}
	first := runningCluster()
	if first == nil {
		t.Fatal("no bus after a start with cluster")
	}
	watcher, err := cluster.New(cluster.Config{Servers: []string{url}, Node: "watcher"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := watcher.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	if live, err := watcher.LiveNodes(ctx); err != nil || fmt.Sprint(live) != "[gw-test watcher]" {
		t.Fatalf("live nodes %v, %v: the gateway did not announce itself", live, err)
	}

	if err := loadJSON(t, gateway(withCluster("2s")+"\t\tlinger 5s\n")); err != nil {
		t.Fatalf("a reload keeping cluster: %v", err)
	}
	if runningCluster() != first {
		t.Fatal("a reload keeping cluster replaced the bus")
	}
	if err := loadJSON(t, gateway(withCluster("3s"))); err == nil || !strings.Contains(err.Error(), "restart to change cluster") {
		t.Fatalf("changing the lease by a reload: got %v, want restart to change cluster", err)
	}
	if err := loadJSON(t, gateway("")); err == nil || !strings.Contains(err.Error(), "restart to change cluster") {
		t.Fatalf("removing cluster by a reload: got %v, want restart to change cluster", err)
	}
	if runningCluster() != first {
		t.Fatal("a refused reload replaced the bus")
	}

	// Stopping the gateway closes the connection: the node drops out.
	unloadAfterRefusal(t)
	if runningCluster() != nil {
		t.Fatal("the bus outlived the gateway")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		live, err := watcher.LiveNodes(ctx)
		if err == nil && fmt.Sprint(live) == "[watcher]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("live nodes %v, %v after the gateway stopped", live, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// With `cluster`, the gateway's feeds go through it: the node owns the lot
// a client monitors, appends its changes to the log and says so on
// /nellis/feeds; a reload keeps the lease, and stopping releases it at
// once for another node.
func TestClusterGatewayOwnsFeedsAndReleasesThem(t *testing.T) {
	url := startTestNATS(t)
	sim, simURL := newSimulator(t)
	storage := t.TempDir()
	withCluster := func(extra string) string {
		return gatewayConfig(simURL, storage, fmt.Sprintf("cookie_key %s\n\t\tcluster %s {\n\t\t\tnode gw-test\n\t\t\tlease 1s\n\t\t}\n%s", clusterKeyHex, url, extra))
	}
	loadCaddy(t, noGatewayConfig)
	defer loadCaddy(t, noGatewayConfig)
	loadCaddy(t, withCluster(""))

	watcher, err := cluster.New(cluster.Config{Servers: []string{url}, Node: "watcher", Lease: 1e9})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := watcher.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()

	lot := sim.Auctions()[0]
	ext, _, err := dialExtension(t, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	ext.monitor(lot.ID)
	var feed hub.FeedStatus
	eventually(t, 5*time.Second, "the lot owned here, on sse", func() bool {
		r := adminReport(t)
		if len(r.Feeds) != 1 {
			return false
		}
		feed = r.Feeds[0]
		return feed.Role == "owner" && feed.Owner == "gw-test" && feed.Seq > 0 && r.Totals.OpenStreams == 1
	})
	last, err := watcher.Last(ctx, lot.ID)
	if err != nil {
		t.Fatalf("the lot's log: %v", err)
	}
	if last.Epoch != feed.Epoch || last.Seq < feed.Seq {
		t.Fatalf("the log's last change is %s/%d, the feed's %s/%d", last.Epoch, last.Seq, feed.Epoch, feed.Seq)
	}

	// A reload keeps the lease: nobody else can claim the lot across it.
	held := func() {
		t.Helper()
		_, err := watcher.Claim(ctx, lot.ID)
		if h, ok := errors.AsType[*cluster.HeldError](err); !ok || h.Node != "gw-test" {
			t.Fatalf("claiming the lot: %v, want it held by gw-test", err)
		}
	}
	held()
	if err := loadJSON(t, withCluster("\t\tlinger 5s\n")); err != nil {
		t.Fatalf("a reload keeping cluster: %v", err)
	}
	for end := time.Now().Add(1500 * time.Millisecond); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		held()
	}
	if f := adminReport(t).Feeds; len(f) != 1 || f[0].Role != "owner" || f[0].Epoch != feed.Epoch {
		t.Fatalf("after the reload: %+v, want the same feed, owned here", f)
	}

	// A graceful stop releases the lease: no waiting a lease out.
	loadCaddy(t, noGatewayConfig)
	stopped := time.Now()
	eventually(t, time.Second, "the lot claimable after the gateway stopped", func() bool {
		l, err := watcher.Claim(ctx, lot.ID)
		if err == nil {
			_ = watcher.Release(ctx, l)
		}
		return err == nil
	})
	t.Logf("claimable %v after the stop", time.Since(stopped).Round(time.Millisecond))
}
