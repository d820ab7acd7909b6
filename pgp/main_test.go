package pgp

import (
	"flag"
	"os"
	"testing"
)

// defaultMinimizeTime replaces go test's 60 s default for
// -fuzzminimizetime. The fuzzer minimises every input that finds new
// coverage, by trying to remove every range of bytes: about n²/2 runs for
// an n-byte input. Our inputs are keys and messages of 500 to 1000 bytes,
// and a run costs some 50 µs of coverage bookkeeping alone in a binary
// that links go-crypto, circl and go-message, so each new input stopped
// the fuzzer for 10 to 60 s and a 20 s session never got past the seeds.
// An explicit -fuzzminimizetime still wins.
const defaultMinimizeTime = "2s"

func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.fuzzminimizetime" })
	if !set {
		_ = flag.Set("test.fuzzminimizetime", defaultMinimizeTime)
	}
	os.Exit(m.Run())
}
