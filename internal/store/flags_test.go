package store

import (
	"errors"
	"slices"
	"testing"
)

func TestNormalizeFlags(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{nil, nil},
		{[]string{""}, nil},
		{[]string{`\seen`, `\SEEN`, "$Junk", `\Flagged`, "$Junk"}, []string{"$Junk", `\Flagged`, `\Seen`}},
		{[]string{`\Custom`, "work", "Work"}, []string{"Work", `\Custom`, "work"}},
	} {
		if got := NormalizeFlags(c.in); !slices.Equal(got, c.want) {
			t.Errorf("NormalizeFlags(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestApplyFlags(t *testing.T) {
	cur := []string{`\Seen`, "a"}
	for _, c := range []struct {
		name    string
		op      FlagOp
		flags   []string
		want    []string
		changed bool
	}{
		{"add new", FlagsAdd, []string{`\deleted`}, []string{`\Deleted`, `\Seen`, "a"}, true},
		{"add existing", FlagsAdd, []string{`\SEEN`}, cur, false},
		{"remove", FlagsRemove, []string{"a", "zz"}, []string{`\Seen`}, true},
		{"remove missing", FlagsRemove, []string{"zz"}, cur, false},
		{"set same", FlagsSet, []string{`\seen`, "a"}, cur, false},
		{"set empty", FlagsSet, nil, nil, true},
	} {
		got, changed, err := ApplyFlags(cur, c.op, c.flags)
		if err != nil || changed != c.changed || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q %v %v, want %q %v", c.name, got, changed, err, c.want, c.changed)
		}
	}
	if _, _, err := ApplyFlags(cur, FlagOp(9), nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad op: %v", err)
	}
	if !slices.Equal(cur, []string{`\Seen`, "a"}) {
		t.Error("ApplyFlags modified its input")
	}
}
