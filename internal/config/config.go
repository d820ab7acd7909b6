// Package config lets every key of a TOML config file also be a command-line
// flag: it is a kong.Resolver that looks flags up in a TOML document, and a
// printer that shows the effective configuration as TOML.
//
// A flag --mx-listen is found in the file as mx-listen, mx_listen, or
// mx.listen (a table "mx" with key "listen"); flags given on the command line
// win over the file, and the file wins over defaults.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/alecthomas/kong"
)

// ErrUnknownKey is returned when the file has a key that is no flag.
var ErrUnknownKey = errors.New("config: unknown key")

// Resolver reads one TOML file.
type Resolver struct {
	path   string
	values map[string]any // flattened: "mx.listen" and "mx-listen" both present
	used   map[string]bool
}

// Load parses a TOML file. A missing file is an error: a config file named
// on the command line must exist.
func Load(path string) (*Resolver, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, b)
}

// Parse parses TOML bytes; path is only used in messages.
func Parse(path string, b []byte) (*Resolver, error) {
	var doc map[string]any
	if _, err := toml.NewDecoder(bytes.NewReader(b)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("config: %s: %w", path, err)
	}
	r := &Resolver{path: path, values: map[string]any{}, used: map[string]bool{}}
	flatten("", doc, r.values)
	return r, nil
}

func flatten(prefix string, m map[string]any, out map[string]any) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "-" + k
		}
		if sub, ok := v.(map[string]any); ok {
			flatten(key, sub, out)
			continue
		}
		out[normalize(key)] = v
	}
}

func normalize(k string) string {
	return strings.NewReplacer("_", "-", ".", "-").Replace(strings.ToLower(k))
}

// Validate implements kong.Resolver; it refuses keys that match no flag of
// the selected command, so a typo in the file is an error, not ignored.
func (r *Resolver) Validate(app *kong.Application) error {
	known := map[string]bool{}
	for _, n := range app.Leaves(true) {
		for _, f := range n.AllFlags(true) {
			for _, ff := range f {
				known[normalize(ff.Name)] = true
			}
		}
	}
	for _, f := range app.Flags {
		known[normalize(f.Name)] = true
	}
	var bad []string
	for k := range r.values {
		if !known[k] {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return fmt.Errorf("%w in %s: %s", ErrUnknownKey, r.path, strings.Join(bad, ", "))
	}
	return nil
}

// Resolve implements kong.Resolver.
func (r *Resolver) Resolve(_ *kong.Context, _ *kong.Path, flag *kong.Flag) (any, error) {
	v, ok := r.values[normalize(flag.Name)]
	if !ok {
		return nil, nil
	}
	r.used[flag.Name] = true
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = fmt.Sprint(e)
		}
		return strings.Join(parts, ","), nil
	default:
		return fmt.Sprint(x), nil
	}
}

// Print writes the effective values of a command's flags as TOML, in flag
// order, so `--print-config` output can be saved and used as the file.
func Print(w io.Writer, node *kong.Node, skip map[string]bool) error {
	out := map[string]any{}
	var order []string
	for _, group := range node.AllFlags(true) {
		for _, f := range group {
			if skip[f.Name] || f.Name == "help" {
				continue
			}
			v := f.Target
			if !v.IsValid() {
				continue
			}
			key := strings.ReplaceAll(f.Name, "-", "_")
			out[key] = plain(v)
			order = append(order, key)
		}
	}
	sort.Strings(order)
	for _, k := range order {
		var buf bytes.Buffer
		if err := toml.NewEncoder(&buf).Encode(map[string]any{k: out[k]}); err != nil {
			return fmt.Errorf("config: encode %s: %w", k, err)
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return nil
}

func plain(v reflect.Value) any {
	switch v.Kind() {
	case reflect.Slice:
		if v.Len() == 0 {
			return []string{}
		}
	}
	if s, ok := v.Interface().(fmt.Stringer); ok && v.Kind() != reflect.String {
		return s.String()
	}
	return v.Interface()
}
