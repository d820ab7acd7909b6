package config

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

type testCLI struct {
	Config kong.ConfigFlag `help:"config file"`
	Serve  struct {
		APIListen    string   `name:"api-listen" default:":7443"`
		StoreBackend string   `name:"store-backend" default:"bolt"`
		Domains      []string `name:"domains" sep:","`
		Workers      int      `name:"workers" default:"4"`
	} `cmd:""`
}

func parse(t *testing.T, doc string, args ...string) (*testCLI, *kong.Context, error) {
	t.Helper()
	var c testCLI
	r, err := Parse("test.toml", []byte(doc))
	if err != nil {
		return nil, nil, err
	}
	p, err := kong.New(&c, kong.Resolvers(r), kong.Exit(func(int) { t.Fatal("exit") }))
	if err != nil {
		t.Fatal(err)
	}
	ctx, err := p.Parse(args)
	return &c, ctx, err
}

func TestFileKeysBecomeFlags(t *testing.T) {
	doc := "api_listen = \"127.0.0.1:9\"\ndomains = [\"a.test\", \"b.test\"]\n[store]\nbackend = \"redis\"\n"
	c, _, err := parse(t, doc, "serve")
	if err != nil {
		t.Fatal(err)
	}
	if c.Serve.APIListen != "127.0.0.1:9" || c.Serve.StoreBackend != "redis" ||
		strings.Join(c.Serve.Domains, ",") != "a.test,b.test" || c.Serve.Workers != 4 {
		t.Fatalf("resolved %+v", c.Serve)
	}
}

func TestFlagWinsOverFile(t *testing.T) {
	c, _, err := parse(t, "workers = 9\n", "serve", "--workers", "2")
	if err != nil {
		t.Fatal(err)
	}
	if c.Serve.Workers != 2 {
		t.Fatalf("workers = %d, want the flag's 2", c.Serve.Workers)
	}
}

func TestUnknownKeyRefused(t *testing.T) {
	_, _, err := parse(t, "api_lisen = \"x\"\n", "serve")
	if !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), "api-lisen") {
		t.Fatalf("err = %v, want ErrUnknownKey naming the key", err)
	}
}

func TestBadTOML(t *testing.T) {
	if _, err := Parse("bad.toml", []byte("a = = 1")); err == nil || !strings.Contains(err.Error(), "bad.toml") {
		t.Fatalf("err = %v", err)
	}
}

func TestPrintRoundTrips(t *testing.T) {
	_, ctx, err := parse(t, "domains = [\"x.test\"]\n", "serve", "--api-listen", "127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Print(&buf, ctx.Selected(), map[string]bool{"config": true}); err != nil {
		t.Fatal(err)
	}
	c2, _, err := parse(t, buf.String(), "serve")
	if err != nil {
		t.Fatalf("printed config does not parse back: %v\n%s", err, buf.String())
	}
	if c2.Serve.APIListen != "127.0.0.1:1" || strings.Join(c2.Serve.Domains, ",") != "x.test" {
		t.Fatalf("round trip lost values: %+v\n%s", c2.Serve, buf.String())
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("a = 1\n[b]\nc = \"d\"\n"))
	f.Add([]byte("x = [1, 2]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Parse("fuzz", b)
		if err == nil && r == nil {
			t.Fatal("nil resolver without error")
		}
	})
}
