// Command caddy is Caddy with the standard modules and Nellis Edge's.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/nellis-edge/gateway"
)

func main() {
	caddycmd.Main()
}
