package redistest

import (
	"strings"
	"testing"
)

func TestStartAnswersPing(t *testing.T) {
	u := Start(t)
	if !strings.HasPrefix(u, "unix://") {
		t.Fatalf("URL %q is not unix://", u)
	}
	if err := ping("unix", strings.TrimPrefix(u, "unix://")); err != nil {
		t.Fatal(err)
	}
}

func TestKillRestartKeepsAOF(t *testing.T) {
	s := StartServer(t, t.TempDir())
	sock := strings.TrimPrefix(s.URL(), "unix://")
	if _, err := command("unix", sock, "SET k v", "+OK"); err != nil {
		t.Fatal(err)
	}
	s.Kill()
	if ping("unix", sock) == nil {
		t.Fatal("server still answers after Kill")
	}
	s.Restart()
	line, err := command("unix", sock, "GET k", "$1")
	if err != nil {
		t.Fatalf("after restart: %v (%q)", err, line)
	}
}

func TestStartCluster(t *testing.T) {
	nodes := StartCluster(t, 3)
	if len(nodes) != 3 {
		t.Fatalf("got %d nodes", len(nodes))
	}
	for _, n := range nodes {
		ok, err := clusterOK(n)
		if !ok {
			t.Fatalf("node %s: %v", n, err)
		}
	}
}
