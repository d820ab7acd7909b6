//go:build !linux

package bridge

// dropResident does nothing where the memory a file mapping holds is not
// counted the same way, or madvise is not available.
func dropResident(addr uintptr, n int64) {}
