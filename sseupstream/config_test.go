package sseupstream

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nellis-edge/gateway/settings"
)

func TestWithDefaults(t *testing.T) {
	c := Config{Endpoint: "https://sse.nellisauction.com"}.WithDefaults()
	if time.Duration(c.StallTimeout) != 3*time.Second || time.Duration(c.BackoffBase) != time.Second || time.Duration(c.BackoffMax) != 15*time.Second ||
		time.Duration(c.HealthyAfter) != 30*time.Second || c.MaxEventSize != 1<<20 {
		t.Errorf("defaults: %+v", c)
	}
	if c.HTTPClient == nil || c.HTTPClient.Timeout != 0 || c.Clock == nil || c.Logger == nil || c.randInt64N == nil {
		t.Errorf("missing default dependency: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
	kept := Config{StallTimeout: settings.Duration(time.Minute), MaxEventSize: 5}.WithDefaults()
	if time.Duration(kept.StallTimeout) != time.Minute || kept.MaxEventSize != 5 {
		t.Errorf("set fields overwritten: %+v", kept)
	}
}

func TestValidate(t *testing.T) {
	good := Config{Endpoint: "https://sse.nellisauction.com"}.WithDefaults()
	tests := map[string]struct {
		change func(*Config)
		want   string
	}{
		"no endpoint":       {func(c *Config) { c.Endpoint = "" }, "endpoint is required"},
		"relative endpoint": {func(c *Config) { c.Endpoint = "sse.nellisauction.com" }, `scheme must be http or https, got ""`},
		"ftp endpoint":      {func(c *Config) { c.Endpoint = "ftp://x" }, `got "ftp"`},
		"no host":           {func(c *Config) { c.Endpoint = "https://" }, "no host"},
		"bad url":           {func(c *Config) { c.Endpoint = "https://a b:secret@x/%zz" }, "not a valid URL"},
		"user info":         {func(c *Config) { c.Endpoint = "https://me:secret@x" }, "user info"},
		"query":             {func(c *Config) { c.Endpoint = "https://x/?productId=1" }, "query"},
		"client timeout":    {func(c *Config) { c.HTTPClient = &http.Client{Timeout: time.Minute} }, "overall timeout of 1m0s"},
		"negative stall":    {func(c *Config) { c.StallTimeout = -1 }, "stall timeout must not be negative"},
		"base over max":     {func(c *Config) { c.BackoffBase = settings.Duration(time.Minute) }, "backoff base 1m0s exceeds backoff max 15s"},
		"negative size":     {func(c *Config) { c.MaxEventSize = -1 }, "max event size"},
	}
	for name, tt := range tests {
		c := good
		tt.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: error leaks the endpoint's secret: %v", name, err)
		}
	}
}

func TestStreamURL(t *testing.T) {
	for endpoint, want := range map[string]string{
		"https://sse.nellisauction.com":  "https://sse.nellisauction.com/live-products?productId=42",
		"https://sse.nellisauction.com/": "https://sse.nellisauction.com/live-products?productId=42",
		"http://127.0.0.1:9/prefix":      "http://127.0.0.1:9/prefix/live-products?productId=42",
	} {
		got, err := streamURL(endpoint, 42)
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", endpoint, got, err, want)
		}
	}
}
