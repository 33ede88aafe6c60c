package cluster

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

func TestConfigDefaults(t *testing.T) {
	c := Config{Servers: []string{"nats://127.0.0.1:4222"}}.WithDefaults()
	host, _ := os.Hostname()
	if c.Node != strings.NewReplacer(".", "-").Replace(host) || c.Prefix != "nellis" || c.Replicas != 1 || time.Duration(c.Lease) != 3*time.Second ||
		time.Duration(c.HistoryAge) != 24*time.Hour || c.History != 64 || c.RemoteUsers != 10000 {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("the defaults do not validate: %v", err)
	}
	if c.renewEvery() != time.Second {
		t.Fatalf("renew every %v, want a third of the lease", c.renewEvery())
	}
}

// Each bad setting is named, and no secret appears in any error.
func TestConfigErrors(t *testing.T) {
	base := func() Config {
		return Config{Servers: []string{"nats://n1:4222", "tls://n2:4222"}, Node: "gw-1"}.WithDefaults()
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no servers", func(c *Config) { c.Servers = nil }, "no NATS server"},
		{"http scheme", func(c *Config) { c.Servers = []string{"http://n1:4222"} }, `"http://n1:4222": scheme must be nats, tls, ws or wss`},
		{"no host", func(c *Config) { c.Servers = []string{"nats://"} }, "no host"},
		{"credentials in the URL", func(c *Config) { c.Servers = []string{"nats://bob:s3cret-pass@n1:4222"} }, "holds credentials"},
		{"bad node", func(c *Config) { c.Node = "gw.1" }, `node "gw.1"`},
		{"bad prefix", func(c *Config) { c.Prefix = "nel lis" }, `prefix "nel lis"`},
		{"two auths", func(c *Config) { c.Token = "s3cret-token"; c.Creds = "/etc/nats.creds" }, "at most one of creds, token and user"},
		{"user without password", func(c *Config) { c.User = "bob" }, "user needs both"},
		{"replicas 0", func(c *Config) { c.Replicas = -1 }, "replicas must be 1 to 5, got -1"},
		{"replicas 7", func(c *Config) { c.Replicas = 7 }, "replicas must be 1 to 5, got 7"},
		{"short lease", func(c *Config) { c.Lease = 5e8 }, "lease must be 1s to 30s, got 500ms"},
		{"long lease", func(c *Config) { c.Lease = 31e9 }, "lease must be 1s to 30s, got 31s"},
		{"short history_age", func(c *Config) { c.HistoryAge = 1e9 }, "history_age must be at least 1m0s, got 1s"},
		{"remote_users", func(c *Config) { c.RemoteUsers = -1 }, "remote_users must be at least 1, got -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
			for _, secret := range []string{"s3cret"} {
				if strings.Contains(err.Error(), secret) {
					t.Fatalf("the error %q shows a secret", err)
				}
			}
		})
	}
	ok := base()
	ok.User, ok.Password = "bob", "pw"
	if err := ok.Validate(); err != nil {
		t.Fatalf("user and password: %v", err)
	}
}

// New checks the config without dialling: a listener standing for NATS
// sees no connection until Connect.
func TestNewDoesNoNetworkIO(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan struct{}, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			c.Close()
			accepted <- struct{}{}
		}
	}()
	b, err := New(Config{Servers: []string{"nats://" + l.Addr().String()}, Node: "gw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(t.Context(), 1); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("Claim before Connect: got %v, want not connected", err)
	}
	select {
	case <-accepted:
		t.Fatal("New dialled the server")
	case <-time.After(200 * time.Millisecond):
	}
	if _, err := New(Config{Node: "gw"}); err == nil {
		t.Fatal("New accepted a config without servers")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
