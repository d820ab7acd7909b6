package server

import (
	"runtime/debug"
	"testing"
)

func currentGCPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

func TestTuneGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	before := currentGCPercent()
	restore := TuneGC(0, 64)
	if got := currentGCPercent(); got != DefaultGCPercent {
		t.Fatalf("GC percent after TuneGC(0) = %d, want %d", got, DefaultGCPercent)
	}
	if got := debug.SetMemoryLimit(-1); got != 64<<20 {
		t.Fatalf("memory limit = %d, want 64 MiB", got)
	}
	restore()
	if got := currentGCPercent(); got != before {
		t.Fatalf("restore left GC percent %d, want %d", got, before)
	}

	t.Setenv("GOGC", "150") // the environment wins over the flag
	restore = TuneGC(500, 0)
	defer restore()
	if got := currentGCPercent(); got != before {
		t.Fatalf("TuneGC changed GC percent to %d although GOGC is set", got)
	}
}
