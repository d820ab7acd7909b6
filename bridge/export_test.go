package bridge

import "testing"

// These expose test helpers of package bridge to the external test package
// (bridge_test), whose benchmarks drive imapd over an Account; imapd
// imports bridge, so only an external test package can import both.

// FillTestCache writes n messages with small summaries over boxes into a
// new cache at path, as fillCache does.
func FillTestCache(t testing.TB, path string, key []byte, boxes []string, n int) {
	fillCache(t, path, key, boxes, n)
}

// OpenTestCacheAccount opens the cache at path as an Account without a
// server; CloseTestCache closes it.
func OpenTestCacheAccount(t testing.TB, path string, key []byte) *Account {
	return cacheAccount(t, path, key, OpenConfig{})
}

// CloseTestCache closes an Account opened by OpenTestCacheAccount.
func (a *Account) CloseTestCache() error { return a.cache.close() }

// TestCacheName is the cache's file name.
const TestCacheName = cacheName
