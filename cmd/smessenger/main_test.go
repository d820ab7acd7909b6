package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestHelpListsCommands(t *testing.T) {
	var out, errOut bytes.Buffer
	// kong exits on --help; use the usage printer through an unknown command instead.
	err := run([]string{"version"}, &out, &errOut)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "smessenger ") {
		t.Fatalf("version output %q", out.String())
	}
}
