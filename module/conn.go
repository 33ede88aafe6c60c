package module

import (
	"net"
	"reflect"
)

// caddyPlainConn returns the TCP connection under Caddy's wrapper of a
// plain-HTTP connection, or nil. Caddy wraps every connection of a server
// that does not speak both HTTP/1 and h2c in a type that checks the first
// bytes for the h2c preface and afterwards passes reads straight through,
// buffering nothing; so the relay may wait on the descriptor under it to
// park an idle socket (wsrelay.Options.Unwrap). The type is unexported,
// hence reflection; should a Caddy release rename or change it, nothing
// matches and idle sockets simply keep their reader goroutines.
func caddyPlainConn(c net.Conn) net.Conn {
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.Type().String() != "*caddyhttp.http2Conn" {
		return nil
	}
	f := v.Elem().FieldByName("Conn")
	if !f.IsValid() || !f.CanInterface() {
		return nil
	}
	inner, _ := f.Interface().(net.Conn)
	return inner // the relay itself checks that it is plain TCP
}
