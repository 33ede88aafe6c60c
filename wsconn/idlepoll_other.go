//go:build !linux || nellis_portable

package wsconn

import "errors"

// idlePoller needs epoll; elsewhere every idle socket keeps its reader
// goroutine, waiting inside gorilla.
type idlePoller struct{}

func newIdlePoller() (*idlePoller, error) { return nil, errors.New("idle poller: not supported here") }

func (p *idlePoller) arm(*Socket) error { return errors.New("idle poller: not supported here") }
func (p *idlePoller) forget(*Socket)    {}
func (p *idlePoller) close()            {}
