package redistest

import (
	"os/exec"
	"syscall"
)

// orphanProof makes the kernel kill the server when the test binary dies
// (panic, -timeout, SIGKILL), so no redis-server outlives its test.
func orphanProof(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
