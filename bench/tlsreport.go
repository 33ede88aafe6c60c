package main

import (
	"fmt"
	"strings"
	"time"
)

// TLS targets of issue 13.
const (
	tlsP99Ratio     = 1.25 // TLS p99 / plain p99 at 10, 1,000 and 10,000 clients
	tls100kP99Ratio = 2.0  // at 100,000 deliveries/s, with no drops
	tlsIdleKiB      = 10.0 // RSS per idle TLS socket …
	tlsIdleOverFlr  = 1.0  // … or within this of the floor's TLS figure
	tlsHeld         = 19_000
)

// ratio is a/b, or 0 when b is not a figure.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// ratioText prints a ratio, or a dash when one side is missing.
func ratioText(x float64) string {
	if x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

// tlsTable writes issue 13's TLS figures: each TLS scenario beside its
// plain twin of the same run, for the gateway and the machine floor, with
// the ratio of their p99s and the target; then the idle sockets of every
// idle target.
func (r *report) tlsTable(b *strings.Builder) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	byKey := map[string]loadOutcome{}
	for _, o := range r.loads {
		byKey[o.spec.key] = o
	}
	p99 := func(key string) (string, float64) {
		o, ok := byKey[key]
		if !ok {
			return "–", 0
		}
		return trim(o.res.Latency.P99), o.res.Latency.P99
	}
	var rows []string
	for _, base := range tlsBases {
		t, ok := byKey["tls-"+base]
		if !ok {
			continue
		}
		plainText, plain := p99(base)
		tlsText, tlsP99 := p99("tls-" + base)
		flrText, flr := p99("floor-" + base)
		flrTLSText, flrTLS := p99("floor-tls-" + base)
		gwRatio := ratio(tlsP99, plain)
		bound, target := tlsP99Ratio, fmt.Sprintf("TLS p99 ≤ %.2f× plain", tlsP99Ratio)
		if base == "100k" {
			bound, target = tls100kP99Ratio, fmt.Sprintf("TLS p99 ≤ %g× plain, no drops", tls100kP99Ratio)
		}
		v := "no plain row"
		if plain > 0 {
			v = verdict(gwRatio, bound, true, "×")
		}
		if base == "100k" && t.res.Drops > 0 {
			v = fmt.Sprintf("**missed**: %d drops", t.res.Drops)
		}
		rows = append(rows, fmt.Sprintf("| %s | %s | %s | %s | %d | %s | %s | %s | %s | %s |\n",
			t.spec.name, plainText, tlsText, ratioText(gwRatio), t.res.Drops, flrText, flrTLSText, ratioText(ratio(flrTLS, flr)), target, v))
	}
	var idle []string
	var gwTLS, flrTLS *idleOutcome
	for i, o := range r.idles {
		switch o.target.key {
		case "idle-tls":
			gwTLS = &r.idles[i]
		case "floor-idle-tls":
			flrTLS = &r.idles[i]
		}
		problem := o.firstClose
		if problem == "" {
			problem = "–"
		}
		idle = append(idle, fmt.Sprintf("| %s | %d of %d | %s | %s | %s | %d | %.1f s | %.1f (%.1f) | %s |\n",
			o.target.name, o.conns, o.wanted, o.setup.Round(time.Second), trim(o.perConnKiB()),
			trim(float64(o.endRSS-o.baseRSS)/float64(max(o.conns, 1))), o.open, o.gwCPU.Seconds(),
			float64(o.endRSS)/1024, float64(o.peak)/1024, problem))
	}
	if len(rows) == 0 && gwTLS == nil && flrTLS == nil {
		return
	}
	w("\n#### TLS beside plain (issue 13)\n\n")
	w("The TLS scenarios serve the same clients over `wss://`: Caddy terminates TLS with a certificate the driver generates for the run " +
		"(`bench/benchcert`, `tls cert.pem key.pem`), which the load generators verify; the floor server serves the same certificate with Go's crypto/tls. " +
		"Each TLS scenario runs right after its plain twin.\n\n")
	if len(rows) > 0 {
		w("| scenario | gateway p99 ms, plain | gateway p99 ms, TLS | TLS / plain | TLS drops | floor p99 ms, plain | floor p99 ms, TLS | floor TLS / plain | target | verdict |\n")
		w("|---|---|---|---|---|---|---|---|---|---|\n")
		for _, row := range rows {
			w("%s", row)
		}
	}
	if len(idle) > 0 {
		w("\nIdle sockets, each server in its own process, set up one after another, then held together for %s (authenticated, monitoring nothing):\n\n", r.idles[0].hold)
		w("| server | connected | set up in | KiB RSS per socket, settled | KiB per socket, end of hold | open at the end | server CPU over the hold | RSS MiB at the end (peak) | first problem |\n")
		w("|---|---|---|---|---|---|---|---|---|\n")
		for _, row := range idle {
			w("%s", row)
		}
	}
	if gwTLS != nil {
		w("\n| target | measured | verdict |\n|---|---|---|\n")
		bound, target := tlsIdleKiB, fmt.Sprintf("≤ %g KiB gateway RSS per idle TLS socket", tlsIdleKiB)
		measured := trim(gwTLS.perConnKiB()) + " KiB"
		if flrTLS != nil {
			bound = max(bound, flrTLS.perConnKiB()+tlsIdleOverFlr)
			target += fmt.Sprintf(", or within %g KiB of the floor's TLS figure", tlsIdleOverFlr)
			measured += fmt.Sprintf(" (floor %s KiB)", trim(flrTLS.perConnKiB()))
		}
		w("| %s | %s | %s |\n", target, measured, verdict(gwTLS.perConnKiB(), bound, true, " KiB"))
		// The floor holds a goroutine and gorilla's buffers per socket, so
		// its own idle figure is no minimum; what TLS adds to it is what
		// crypto/tls alone costs, the fairer yardstick for what TLS adds to
		// the gateway's.
		if gw, flr := r.idleOf("idle"), r.idleOf("floor-idle"); gw != nil && flrTLS != nil && flr != nil {
			gwAdds, flrAdds := gwTLS.perConnKiB()-gw.perConnKiB(), flrTLS.perConnKiB()-flr.perConnKiB()
			w("| what TLS adds per idle socket, within %g KiB of what it adds to the floor (crypto/tls alone) | gateway +%s KiB, floor +%s KiB | %s |\n",
				tlsIdleOverFlr, trim(gwAdds), trim(flrAdds), verdict(gwAdds, flrAdds+tlsIdleOverFlr, true, " KiB"))
		}
		held := float64(gwTLS.open)
		if gwTLS.hold < 10*time.Minute {
			held = 0 // a short hold proves nothing of the 10 minutes
		}
		w("| %d TLS sockets held 10 min | %d of %d open after %s | %s |\n",
			tlsHeld, gwTLS.open, gwTLS.wanted, gwTLS.hold, verdict(held, tlsHeld, false, " sockets"))
	}
}

// idleOf is the idle outcome of the target keyed key, if it ran.
func (r *report) idleOf(key string) *idleOutcome {
	for i := range r.idles {
		if r.idles[i].target.key == key {
			return &r.idles[i]
		}
	}
	return nil
}
