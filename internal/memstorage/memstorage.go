// Package memstorage is the users' storage in memory, for tests: what
// certmagic.Storage (Caddy's storage) keeps on disk, held in a map.
package memstorage

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"
)

// Storage loads and stores values by key, copying them in and out, and
// is safe for concurrent use. It cannot list: a storage that must, as
// certmagic's, is a Listing.
type Storage struct {
	mu   sync.Mutex
	data map[string][]byte
}

// New is an empty Storage.
func New() *Storage { return &Storage{data: make(map[string][]byte)} }

// Load is the value stored under key; an error matching fs.ErrNotExist
// when there is none.
func (s *Storage) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	if !ok {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	return bytes.Clone(v), nil
}

// Store keeps a copy of value under key.
func (s *Storage) Store(_ context.Context, key string, value []byte) error {
	s.Put(key, value)
	return nil
}

// Get is the value under key, nil when there is none: what a test
// inspects.
func (s *Storage) Get(key string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data[key]
}

// Put sets the value under key: what a test plants.
func (s *Storage) Put(key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[key] = bytes.Clone(value)
}

// Listing is a Storage that also lists and deletes, as certmagic's does.
type Listing struct{ *Storage }

// NewListing is an empty Listing.
func NewListing() Listing { return Listing{New()} }

// List is the keys under prefix, sorted; an error matching fs.ErrNotExist
// when there are none.
func (l Listing) List(_ context.Context, prefix string, _ bool) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var keys []string
	for k := range l.data {
		if strings.HasPrefix(k, prefix+"/") {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fs.ErrNotExist
	}
	slices.Sort(keys)
	return keys, nil
}

// Delete removes key.
func (l Listing) Delete(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.data, key)
	return nil
}
