package module

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
)

// merge adds the settings of b (one parsed subdirective) to a. A setting a
// already has with another value is a conflict; the same value again is
// fine, so a `nellis` block may be repeated, say in an imported snippet.
func (a *App) merge(b *App) error {
	for _, u := range b.Users {
		i := slices.IndexFunc(a.Users, func(have User) bool { return have.Name == u.Name })
		switch {
		case i < 0:
			if slices.ContainsFunc(a.Users, func(have User) bool { return have.Token == u.Token }) {
				return fmt.Errorf("user %q shares a token with another user", u.Name)
			}
			a.Users = append(a.Users, u)
		case a.Users[i].Token != u.Token:
			// Never name the token: it is a secret.
			return fmt.Errorf("user %q given twice with different tokens", u.Name)
		}
	}
	// The rest goes through JSON, users aside: re-encoding them for every
	// line would make a Caddyfile with many `user` lines quadratic.
	b.Users = nil
	if reflect.ValueOf(b).Elem().IsZero() {
		return nil
	}
	users := a.Users
	a.Users = nil
	defer func() { a.Users = users }()
	mine, err := toMap(a)
	if err != nil {
		return err
	}
	theirs, err := toMap(b)
	if err != nil {
		return err
	}
	if err := mergeMaps(mine, theirs, ""); err != nil {
		return err
	}
	merged, err := json.Marshal(mine)
	if err != nil {
		return err
	}
	*a = App{}
	return json.Unmarshal(merged, a)
}

func toMap(a *App) (map[string]any, error) {
	raw, err := json.Marshal(a)
	if err != nil {
		return nil, err
	}
	m := make(map[string]any)
	return m, json.Unmarshal(raw, &m)
}

// mergeMaps copies src's leaves into dst, refusing to change one.
func mergeMaps(dst, src map[string]any, path string) error {
	for k, v := range src {
		sub, isMap := v.(map[string]any)
		have, exists := dst[k]
		switch {
		case !exists:
			dst[k] = v
		case isMap:
			haveMap, ok := have.(map[string]any)
			if !ok {
				return fmt.Errorf("setting %s%s has conflicting types", path, k)
			}
			if err := mergeMaps(haveMap, sub, path+k+"."); err != nil {
				return err
			}
		case !reflect.DeepEqual(have, v):
			// The values stay out of the message: one may be a secret.
			return errors.New("given twice with different values")
		}
	}
	return nil
}
