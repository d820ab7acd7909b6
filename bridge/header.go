package bridge

import (
	"bytes"
	"strings"
)

// splitMessage splits a raw RFC 5322 message into its header fields (each
// with its folded continuation lines and line ending) and the body. A
// message without a blank line is all header. It never fails.
func splitMessage(raw []byte) (fields [][]byte, body []byte) {
	rest := raw
	for len(rest) > 0 {
		if rest[0] == '\n' {
			return fields, rest[1:]
		}
		if len(rest) > 1 && rest[0] == '\r' && rest[1] == '\n' {
			return fields, rest[2:]
		}
		end := lineEnd(rest)
		// Fold continuation lines (starting with space or tab) into the field.
		for end < len(rest) && (rest[end] == ' ' || rest[end] == '\t') {
			end += lineEnd(rest[end:])
		}
		if (rest[0] == ' ' || rest[0] == '\t') && len(fields) > 0 {
			fields[len(fields)-1] = append(fields[len(fields)-1], rest[:end]...)
		} else {
			fields = append(fields, rest[:end:end])
		}
		rest = rest[end:]
	}
	return fields, nil
}

// lineEnd returns the length of the first line of b including its "\n".
func lineEnd(b []byte) int {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return i + 1
	}
	return len(b)
}

// fieldName returns the lower-case name of a header field.
func fieldName(f []byte) string {
	i := bytes.IndexByte(f, ':')
	if i < 0 {
		return ""
	}
	return strings.ToLower(string(bytes.TrimSpace(f[:i])))
}

// fieldValue returns the unfolded value of a header field.
func fieldValue(f []byte) string {
	i := bytes.IndexByte(f, ':')
	if i < 0 {
		return ""
	}
	v := strings.NewReplacer("\r\n", "", "\n", "").Replace(string(f[i+1:]))
	return strings.TrimSpace(v)
}

// headerValue returns the first value of the named field in fields.
func headerValue(fields [][]byte, name string) string {
	for _, f := range fields {
		if fieldName(f) == name {
			return fieldValue(f)
		}
	}
	return ""
}

// withCRLF makes sure a header field ends with CRLF.
func withCRLF(f []byte) []byte {
	f = bytes.TrimRight(f, "\r\n")
	return append(f, '\r', '\n')
}
