package wsconn

// Queued is how many messages wait for the socket's writer.
func (s *Socket) Queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// HoldWriter takes the writer's role of an idle socket (nothing being
// written, nothing queued), so that what is sent next waits in the queue
// until ReleaseWriter; it reports whether it did. For tests that need a
// queue to look at: a held socket never writes.
func (s *Socket) HoldWriter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.writing || len(s.queue) > 0 || s.rest != nil {
		return false
	}
	s.writing = true
	return true
}

// ReleaseWriter gives up a role HoldWriter took and starts the writer for
// what was queued meanwhile.
func (s *Socket) ReleaseWriter() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writing = false
	s.startWriterLocked()
}

// Ended is a socket that has ended, without a connection: Send releases
// each frame and writes nothing, Close does nothing. An owner's logic can
// be exercised with it where no client reads the replies.
func Ended() *Socket { return &Socket{closed: true} }
