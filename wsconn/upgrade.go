package wsconn

import (
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// IsUpgrade reports whether req asks for a WebSocket.
func IsUpgrade(req *http.Request) bool { return websocket.IsWebSocketUpgrade(req) }

// Upgrade answers req's handshake and returns the socket, not yet reading.
// The caller, who has checked the origin and its own limits, then calls
// Attach, may Send (the greeting goes before any reply), and calls Run to
// start reading, or Reject to close it at once. On error the client has
// had its answer.
func (t *Transport) Upgrade(w http.ResponseWriter, req *http.Request) (*Socket, error) {
	hw, hj := hijackable(w, readBufferSize, t.unwrap)
	ws, err := t.upgrader.Upgrade(hw, req, nil)
	if err != nil {
		return nil, err
	}
	s := &Socket{t: t, ws: ws, hj: hj}
	hj.s = s
	t.wg.Add(1) // the reader's, held until it ends (teardown) or Reject
	s.setControlHandlers()
	return s, nil
}

// Attach makes h the socket's handler; call it once, before Send.
func (s *Socket) Attach(h Handler) { s.h = h }

// Run starts the socket's reader.
func (s *Socket) Run() {
	s.applyLimit()
	go s.readLoop(false)
}

// Reject closes a socket that never ran, with a close frame, and waits
// for nothing: the handler is not called.
func (s *Socket) Reject(code int, text string) {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.hj.wmu.Lock()
	if err := s.hj.setWriteDeadline(time.Now().Add(closeGrace)); err == nil {
		_, _ = s.hj.out.Write(closeFrameBytes(code, text))
	}
	s.hj.wmu.Unlock()
	s.ws.Close()
	s.t.wg.Done()
}
