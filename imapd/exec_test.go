package imapd

import "os/exec"

var execLookPath = exec.LookPath
