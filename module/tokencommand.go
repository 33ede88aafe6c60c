package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	"github.com/spf13/cobra"

	"github.com/nellis-edge/gateway/tokens"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "nellis-token",
		Usage: "--user <name> [--ttl <duration>] [--config <path> [--adapter <name>]] [--key-env <VAR>]",
		Short: "Mints a signed token (HS256 JWT) for one bidder with the configured jwt hmac_key",
		Long: `
Prints a token signed with the jwt block's hmac_key, for a team without an
auth service of its own: the bidder pastes it into the extension's options
where the token goes. It names the user (sub, or the configured user_claim),
says when it was issued (iat) and when it expires (exp, --ttl from now), and
carries the configured issuer and audience, so the gateway with that config
accepts it until it expires.

The key and claims are read from the config as 'caddy run' would load it:
--config (default: the Caddyfile in the current directory) and --adapter.
A key written as {env.VAR} is read from this command's environment, so run
it where the gateway's environment is set. --key-env VAR takes the key from
the environment variable VAR instead (issuer and audience still come from
the config when there is one).`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.Flags().String("user", "", "The user the token names (required)")
			cmd.Flags().Duration("ttl", 24*time.Hour, "How long the token is valid")
			cmd.Flags().StringP("config", "c", "", "Configuration file (default: ./Caddyfile)")
			cmd.Flags().StringP("adapter", "a", "", "Name of config adapter to apply")
			cmd.Flags().String("key-env", "", "Read the HMAC key from this environment variable instead of the config")
			cmd.RunE = runNellisToken
		},
	})
}

func runNellisToken(cmd *cobra.Command, _ []string) error {
	fl := cmd.Flags()
	user, _ := fl.GetString("user")
	ttl, _ := fl.GetDuration("ttl")
	configFile, _ := fl.GetString("config")
	adapter, _ := fl.GetString("adapter")
	keyEnv, _ := fl.GetString("key-env")
	if user == "" {
		return errors.New("--user is required")
	}
	if ttl <= 0 {
		return fmt.Errorf("--ttl must be positive, got %s", ttl)
	}
	cfg, err := tokenConfig(configFile, adapter, keyEnv)
	if err != nil {
		return err
	}
	cmd.SilenceUsage = true // from here on, errors are not about usage
	token, err := tokens.Mint(cfg, user, ttl, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), token)
	return err
}

// tokenConfig reads the jwt settings of the config the gateway would load,
// its key resolved from the environment, or from keyEnv when given.
func tokenConfig(configFile, adapter, keyEnv string) (tokens.Config, error) {
	var cfg tokens.Config
	raw, _, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		if keyEnv == "" || configFile != "" {
			return cfg, fmt.Errorf("reading the config: %w", err)
		}
		raw = nil // --key-env without a config: the key alone
	}
	if len(raw) > 0 {
		var whole struct {
			Apps struct {
				Nellis *App `json:"nellis"`
			} `json:"apps"`
		}
		if err := json.Unmarshal(raw, &whole); err != nil {
			return cfg, fmt.Errorf("reading the config: %w", err)
		}
		if n := whole.Apps.Nellis; n != nil && n.JWT != nil {
			cfg = *n.JWT
		}
	}
	if keyEnv != "" {
		cfg.HMACKey = os.Getenv(keyEnv)
		if cfg.HMACKey == "" {
			return cfg, fmt.Errorf("--key-env: %s is empty or not set", keyEnv)
		}
		return cfg, nil
	}
	if cfg.HMACKey == "" {
		return cfg, errors.New("the config has no jwt block with an hmac_key (or use --key-env)")
	}
	key := caddy.NewReplacer().ReplaceKnown(cfg.HMACKey, "")
	if key == "" {
		// Name the placeholders only: the rest may be key material.
		return cfg, fmt.Errorf("jwt: hmac_key: %s is empty here (is the environment variable set?)",
			joinPlaceholders(cfg.HMACKey))
	}
	cfg.HMACKey = key
	return cfg, nil
}

func joinPlaceholders(raw string) string {
	out := ""
	for _, p := range placeholderPattern.FindAllString(raw, -1) {
		out += p
	}
	return out
}
