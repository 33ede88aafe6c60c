package floor

import (
	"encoding/json"
	"strconv"
)

// StateSize is the length of every event message: about what the gateway's
// auctionState for a bench lot weighs, so the kernel copies as many bytes
// per delivery here as there.
const StateSize = 1500

// WebSocket opcodes the floor writes.
const (
	opText = 0x1
	opPong = 0xa
)

// appendFrame appends one unmasked, final WebSocket frame (RFC 6455 §5.2):
// a server's frames carry no mask, so one framing serves every socket.
func appendFrame(b []byte, opcode byte, payload []byte) []byte {
	b = append(b, 0x80|opcode)
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n <= 0xffff:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, payload...)
}

// stateFrame is the framed message for one scheduled event: the fields the
// load generator's parser reads (bench/loadgen/parse.go: the type first, the
// auction's id, a top-level currentBid and source), padded to StateSize with
// the title. It is built once per event, never per client.
func stateFrame(productID int64, price int) []byte {
	var head, tail []byte
	head = append(head, `{"type":"auctionState","auction":{"id":"`...)
	head = strconv.AppendInt(head, productID, 10)
	head = append(head, `","title":"`...)
	tail = append(tail, `","status":"monitoring","currentBid":`...)
	tail = strconv.AppendInt(tail, int64(price), 10)
	tail = append(tail, `,"source":"floor"}}`...)
	pad := max(0, StateSize-len(head)-len(tail))
	msg := make([]byte, 0, len(head)+pad+len(tail))
	msg = append(msg, head...)
	for range pad {
		msg = append(msg, 'x')
	}
	msg = append(msg, tail...)
	return appendFrame(make([]byte, 0, len(msg)+4), opText, msg)
}

// replyFrame is the answer to a setup request, shaped as the gateway's
// (wsrelay/handler.go) as far as the load generator looks: the requestId
// and "success":true.
func replyFrame(kind, action, auctionID string, requestID json.RawMessage) []byte {
	r := struct {
		Type      string          `json:"type"`
		Action    string          `json:"action,omitempty"`
		AuctionID string          `json:"auctionId,omitempty"`
		Success   bool            `json:"success"`
		RequestID json.RawMessage `json:"requestId,omitempty"`
	}{kind, action, auctionID, true, requestID}
	msg, _ := json.Marshal(r) // cannot fail: strings and a raw message from a decoded request
	return appendFrame(nil, opText, msg)
}

// errorFrame refuses a request the floor does not serve.
func errorFrame(text string, requestID json.RawMessage) []byte {
	r := struct {
		Type      string          `json:"type"`
		Error     string          `json:"error"`
		RequestID json.RawMessage `json:"requestId,omitempty"`
	}{"error", text, requestID}
	msg, _ := json.Marshal(r)
	return appendFrame(nil, opText, msg)
}
