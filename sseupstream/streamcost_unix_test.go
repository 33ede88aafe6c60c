//go:build unix

package sseupstream

import (
	"crypto/x509"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// BenchmarkStreamCost opens 1,000 streams to a simulator in another
// process, each pinged every second, and reports what one open stream
// costs this process: live heap and goroutine stacks, goroutines, and CPU
// over 10 s of pings. Run it alone:
//
//	go test -run '^$' -bench StreamCost -benchtime 1x ./sseupstream
func BenchmarkStreamCost(b *testing.B) {
	const n = 1000
	const cpuWindow = 10 * time.Second
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"http1", false}, {"h2", true}} {
		b.Run(tc.name, func(b *testing.B) {
			child := startSimChild(b, n, tc.tls)
			var roots *x509.CertPool
			if child.cert != nil {
				roots = x509.NewCertPool()
				roots.AppendCertsFromPEM(child.cert)
			}
			mem0, g0 := memNow()
			client := NewHTTPClient(roots)
			cfg := Config{Endpoint: child.url, HTTPClient: client}.WithDefaults()
			obs := newCounter()
			subs := make([]*Subscription, 0, n)
			for _, id := range child.ids {
				subs = append(subs, Subscribe(cfg, id, obs))
			}
			defer func() {
				for _, s := range subs {
					s.Close()
				}
				client.CloseIdleConnections()
			}()
			deadline := time.Now().Add(time.Minute)
			for !obs.each(child.ids, func(id int64) bool { return obs.ups[id] >= 1 }) {
				if time.Now().After(deadline) {
					b.Fatal("streams not up within a minute")
				}
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(2 * time.Second) // a few pings through every buffer
			mem1, g1 := memNow()
			cpu0 := cpuNow()
			time.Sleep(cpuWindow)
			cpu := cpuNow() - cpu0
			b.ReportMetric(float64(mem1-mem0)/n, "B/stream")
			b.ReportMetric(float64(g1-g0)/n, "goroutines/stream")
			b.ReportMetric(float64(cpu.Microseconds())/n/cpuWindow.Seconds(), "µs-CPU/stream/s")
			obs.mu.Lock()
			downs := len(obs.downs)
			obs.mu.Unlock()
			if downs != 0 {
				b.Errorf("%d streams went down during the measurement", downs)
			}
		})
	}
}

// memNow is the live heap plus goroutine stacks after a collection, and
// the number of goroutines.
func memNow() (uint64, int) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse, runtime.NumGoroutine()
}

// cpuNow is the CPU this process has used, user and system.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
