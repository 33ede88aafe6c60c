package wsrelay

import "net/netip"

// addressKey names the client address that the per-address limits count
// against (connections per minute, unauthenticated sockets, failed
// authentications): a whole IPv4 address, or the /64 prefix of an IPv6
// address, since one IPv6 host or subscriber commonly holds a whole /64
// and could otherwise take a fresh address for every socket. An
// IPv4-mapped IPv6 address is the IPv4 address it maps. A string that is
// not an IP address (a Unix socket's, say) is its own key.
func addressKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.WithZone("").Unmap()
	if addr.Is4() {
		return addr.String()
	}
	p, err := addr.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
