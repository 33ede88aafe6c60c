package nellis

import "strings"

// redact hides the user's cookies in an error message, in case a server
// echoed them into a body that an error quotes.
func redact(err error, cookies string) error {
	if err == nil || cookies == "" {
		return err
	}
	msg := err.Error()
	redacted := msg
	for _, secret := range cookieSecrets(cookies) {
		redacted = strings.ReplaceAll(redacted, secret, "[redacted]")
	}
	if redacted == msg {
		return err
	}
	return &redactedError{msg: redacted, err: err}
}

// cookieSecrets lists the whole Cookie header and each cookie value long
// enough to be a secret rather than a common word.
func cookieSecrets(cookies string) []string {
	secrets := []string{cookies}
	for pair := range strings.SplitSeq(cookies, ";") {
		_, value, ok := strings.Cut(pair, "=")
		if value = strings.TrimSpace(value); ok && len(value) >= 8 {
			secrets = append(secrets, value)
		}
	}
	return secrets
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
