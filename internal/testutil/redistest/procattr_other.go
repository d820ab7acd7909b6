//go:build !linux

package redistest

import "os/exec"

// orphanProof has no portable equivalent outside Linux; cleanup still stops
// the server when the test ends normally.
func orphanProof(cmd *exec.Cmd) {}
