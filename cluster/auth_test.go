package cluster

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// A token opens the door; a wrong one fails Connect with an error that
// does not show it.
func TestConnectWithToken(t *testing.T) {
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		Authorization: "s3cret-right-token", NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	defer func() {
		s.Shutdown()
		s.WaitForShutdown()
	}()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("the embedded NATS server did not start")
	}
	connect := func(token string) error {
		b, err := New(Config{Servers: []string{s.ClientURL()}, Node: "gw", Token: token})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return b.Connect(ctx)
	}
	if err := connect("s3cret-right-token"); err != nil {
		t.Fatalf("the right token: %v", err)
	}
	err = connect("s3cret-wrong-token")
	if err == nil {
		t.Fatal("a wrong token connected")
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error shows the token: %v", err)
	}
	if !strings.Contains(err.Error(), "connecting to NATS") {
		t.Fatalf("error %v does not say what failed", err)
	}
}
