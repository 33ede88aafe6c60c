package module

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// TestReloadableLoggerFollowsNewConfig: state that outlives a reload logs
// through the newest config's logger, keeping its own fields.
func TestReloadableLoggerFollowsNewConfig(t *testing.T) {
	firstCore, first := observer.New(zapcore.InfoLevel)
	secondCore, second := observer.New(zapcore.WarnLevel)

	logger, set := newReloadableLogger(zap.New(firstCore))
	feed := logger.With(zap.Int64("product", 7))
	feed.Info("stream connected")

	set(zap.New(secondCore))
	feed.Info("dropped by the new level")
	feed.Warn("stream stalled")

	if first.Len() != 1 || first.All()[0].Message != "stream connected" {
		t.Fatalf("first logger got %v", first.All())
	}
	got := second.All()
	if len(got) != 1 || got[0].Message != "stream stalled" {
		t.Fatalf("second logger got %v", got)
	}
	if got[0].ContextMap()["product"] != int64(7) {
		t.Errorf("fields lost across the reload: %v", got[0].ContextMap())
	}
}
