package store

import (
	"slices"
	"strings"
)

// systemFlags maps the lower-cased IMAP system flags (RFC 9051 section 2.3.2)
// to their canonical spelling, so "\seen" and "\Seen" are one flag and the
// Unseen count does not depend on a client's capitalisation.
var systemFlags = map[string]string{
	`\seen`:     `\Seen`,
	`\answered`: `\Answered`,
	`\flagged`:  `\Flagged`,
	`\deleted`:  `\Deleted`,
	`\draft`:    `\Draft`,
	`\recent`:   `\Recent`,
}

// Standard system flags in their canonical spelling.
const (
	FlagSeen    = `\Seen`
	FlagDeleted = `\Deleted`
)

// NormalizeFlags returns flags with system flags in canonical case, empty
// strings dropped, sorted by byte order and deduplicated. It returns nil for
// no flags. The input is not modified.
func NormalizeFlags(flags []string) []string {
	if len(flags) == 0 {
		return nil
	}
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if f == "" {
			continue
		}
		if f[0] == '\\' {
			if c, ok := systemFlags[strings.ToLower(f)]; ok {
				f = c
			}
		}
		out = append(out, f)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if len(out) == 0 {
		return nil
	}
	return out
}

// HasFlag reports whether normalised flags contain flag (canonical spelling).
func HasFlag(flags []string, flag string) bool {
	_, ok := slices.BinarySearch(flags, flag)
	return ok
}

// ApplyFlags combines the normalised current flags with change under op and
// reports whether the result differs. It returns ErrInvalid for an unknown op.
func ApplyFlags(cur []string, op FlagOp, change []string) ([]string, bool, error) {
	change = NormalizeFlags(change)
	var next []string
	switch op {
	case FlagsSet:
		next = change
	case FlagsAdd:
		next = NormalizeFlags(append(slices.Clone(cur), change...))
	case FlagsRemove:
		for _, f := range cur {
			if !HasFlag(change, f) {
				next = append(next, f)
			}
		}
	default:
		return nil, false, ErrInvalid
	}
	return next, !slices.Equal(cur, next), nil
}
