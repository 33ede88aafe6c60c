package nellissim

import (
	"fmt"
	"sync/atomic"
)

// lotFaults are the faults injected into one lot, or into all of them (the
// Simulator's own). The counters are guarded by Simulator.mu; the flags are
// read on every frame, so they are atomic.
type lotFaults struct {
	failStreams   failCounter
	failSnapshots failCounter
	stalled       atomic.Bool
	dripping      atomic.Bool
}

// failCounter answers the next n requests with status.
type failCounter struct {
	n      int
	status int
}

// take uses up one failure and returns its status, or 0 when none is left.
func (c *failCounter) take() int {
	if c.n <= 0 {
		return 0
	}
	c.n--
	return c.status
}

// DropStreams ends the open streams of product id (0: of every product) at
// once: each response finishes and its client reads EOF.
func (s *Simulator) DropStreams(id int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lots, err := s.targetsLocked(id)
	if err != nil {
		return err
	}
	for _, l := range lots {
		for st := range l.streams {
			delete(l.streams, st)
			st.end()
		}
	}
	return nil
}

// Stall makes the open streams of product id (0: every product) stop
// sending any byte, pings included, while their sockets stay open; events
// meanwhile are lost. A stream opened during a stall gets its headers and
// connected event, then nothing. Stall(id, false) resumes them.
func (s *Simulator) Stall(id int64, on bool) error {
	return s.setFlag(id, on, func(f *lotFaults) *atomic.Bool { return &f.stalled })
}

// SlowDrip makes the streams of product id (0: every product) write one
// byte per second.
func (s *Simulator) SlowDrip(id int64, on bool) error {
	return s.setFlag(id, on, func(f *lotFaults) *atomic.Bool { return &f.dripping })
}

// FailStreams answers the next n stream requests for product id (0: for
// any product) with the HTTP status.
func (s *Simulator) FailStreams(id int64, n, status int) error {
	return s.setFailures(id, n, status, func(f *lotFaults) *failCounter { return &f.failStreams })
}

// FailSnapshots answers the next n snapshot requests (any format) for
// product id (0: for any product) with the HTTP status.
func (s *Simulator) FailSnapshots(id int64, n, status int) error {
	return s.setFailures(id, n, status, func(f *lotFaults) *failCounter { return &f.failSnapshots })
}

// SendRaw writes an event named event (unnamed when empty) whose data line
// is data verbatim, newlines and all, to the streams of product id (0: of
// every product). It is for malformed and oversized payloads.
func (s *Simulator) SendRaw(id int64, event, data string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	lots, err := s.targetsLocked(id)
	if err != nil {
		return err
	}
	frame := s.wire.event(event, data)
	for _, l := range lots {
		s.broadcastLocked(l, frame)
	}
	return nil
}

// SetWire changes how events are written from now on; BOM applies to
// streams opened after the call.
func (s *Simulator) SetWire(w Wire) error {
	if err := w.validate(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wire = w
	return nil
}

func (s *Simulator) setFlag(id int64, on bool, flag func(*lotFaults) *atomic.Bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == 0 {
		flag(&s.faults).Store(on)
		return nil
	}
	l, ok := s.byID[id]
	if !ok {
		return fmt.Errorf("product %d: %w", id, errUnknownLot)
	}
	flag(&l.faults).Store(on)
	return nil
}

func (s *Simulator) setFailures(id int64, n, status int, counter func(*lotFaults) *failCounter) error {
	if n < 0 {
		return fmt.Errorf("failure count must not be negative, got %d", n)
	}
	if status < 200 || status > 599 {
		return fmt.Errorf("status %d is not an HTTP status between 200 and 599", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults
	if id != 0 {
		l, ok := s.byID[id]
		if !ok {
			return fmt.Errorf("product %d: %w", id, errUnknownLot)
		}
		f = &l.faults
	}
	*counter(f) = failCounter{n: n, status: status}
	return nil
}

// targetsLocked is the lot with that id, or every lot for id 0.
func (s *Simulator) targetsLocked(id int64) ([]*lot, error) {
	if id == 0 {
		return s.lots, nil
	}
	l, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("product %d: %w", id, errUnknownLot)
	}
	return []*lot{l}, nil
}

func (s *Simulator) stalled(l *lot) bool {
	return s.faults.stalled.Load() || l.faults.stalled.Load()
}

func (s *Simulator) dripping(l *lot) bool {
	return s.faults.dripping.Load() || l.faults.dripping.Load()
}
