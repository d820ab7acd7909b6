package server_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"net/http"
	"testing"

	"smessenger/internal/server/servertest"
	"smessenger/pgp"
)

func TestWKD(t *testing.T) {
	env := servertest.Start(t, servertest.OpenBolt(t), nil)
	u := env.NewUser(t, "ivy@example.org")
	_, _ = env.AddUser(t, "nokey@example.org")
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	get := func(local string) (int, []byte) {
		url := "https://" + env.Node.WKDAddr().String() + "/.well-known/openpgpkey/example.org/hu/" + pgp.WKDHash(local) + "?l=" + local
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Host = "openpgpkey.example.org"
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	code, body := get("ivy")
	if code != 200 || !bytes.Equal(body, u.Key.PublicBinary()) {
		t.Fatalf("WKD for ivy: %d, key match %v", code, bytes.Equal(body, u.Key.PublicBinary()))
	}
	if code, _ := get("nokey"); code != 404 {
		t.Fatalf("WKD for a user without key: %d", code)
	}
	if code, _ := get("stranger"); code != 404 {
		t.Fatalf("WKD for unknown user: %d", code)
	}
}
