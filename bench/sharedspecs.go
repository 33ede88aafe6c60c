package main

// withShared adds issue 13's shared-token scenarios after c10k: the old
// backend's one AUTH_TOKEN for every extension, 10,000 sockets under one
// user, over ten products (shared-c10k, beside c10k) and over one
// (shared-c10k-1p, beside c10k-1p, the same one-product load with a user
// per socket). Windows and rates are c10k's.
func withShared(specs []loadSpec) []loadSpec {
	var out []loadSpec
	for _, s := range specs {
		out = append(out, s)
		if s.key != "c10k" {
			continue
		}
		shared := s
		shared.key, shared.name, shared.users = "shared-c10k", s.name+", one user", 1
		one := s
		one.key, one.name, one.products = "c10k-1p", s.name+", 1 product", 1
		sharedOne := one
		sharedOne.key, sharedOne.name, sharedOne.users = "shared-c10k-1p", one.name+", one user", 1
		out = append(out, shared, one, sharedOne)
	}
	return out
}

// sharedBase is the one-user-per-socket scenario a shared-token scenario
// is compared with.
var sharedBase = map[string]string{"shared-c10k": "c10k", "shared-c10k-1p": "c10k-1p"}
