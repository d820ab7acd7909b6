package bridge

import "syscall"

// dropResident advises the kernel that the mapped pages [addr, addr+n) are
// not needed (MADV_DONTNEED): for a shared file mapping they leave the
// process's RSS and are read back from the page cache when touched. Errors
// are ignored: the advice only saves memory.
func dropResident(addr uintptr, n int64) {
	if addr == 0 || n <= 0 {
		return
	}
	_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, addr, uintptr(n), syscall.MADV_DONTNEED)
}
