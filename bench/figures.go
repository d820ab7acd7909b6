package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// figures are named numbers, as the shared peer scripts print them.
type figures map[string]float64

// maxFigureLine bounds one line of a script's output; longer lines are
// skipped, never buffered without limit.
const maxFigureLine = 64 << 10

// parseFigures reads the output of the shared scripts. Two forms:
//
//	name value [anything]                        (dovecot_imap.py, smtp_bench.py)
//	tool w1 w2 ... key=value key=value ...       (gocrypto, gpg_bench.py)
//
// The second form yields "tool/w1/w2/.../key" for every key=value. Lines
// that are neither (comments, text values, noise) are ignored: a peer
// script's chatter must not break the table, and a missing figure shows as
// "not measured".
func parseFigures(r io.Reader) figures {
	out := figures{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxFigureLine)
	for sc.Scan() {
		parseFigureLine(sc.Text(), out)
	}
	return out
}

func parseFigureLine(line string, out figures) {
	f := strings.Fields(line)
	if len(f) < 2 || strings.HasPrefix(f[0], "#") || strings.Contains(f[0], "=") {
		return
	}
	words := []string{f[0]}
	kv := false
	for _, w := range f[1:] {
		k, v, ok := strings.Cut(w, "=")
		if !ok {
			if kv {
				break // prose after the key=value list
			}
			words = append(words, w)
			continue
		}
		kv = true
		if x, ok := number(v); ok && k != "" {
			out[strings.Join(words, "/")+"/"+k] = x
		}
	}
	if kv {
		return
	}
	if x, ok := number(f[1]); ok {
		out[f[0]] = x
	}
}

// number parses a finite float.
func number(s string) (float64, bool) {
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		return 0, false
	}
	return x, true
}

// value is one side of a row: a number, or why there is none.
type value struct {
	x   float64
	ok  bool
	why string // "not measured: ..." when !ok
}

func measured(x float64) value { return value{x: x, ok: true} }

func missing(why string) value { return value{why: "not measured: " + why} }

// from looks a figure up, or says which script did not give it.
func (f figures) from(name, source string) value {
	if x, ok := f[name]; ok {
		return measured(x)
	}
	return missing(source + " gave no " + name)
}

// row is one line of the table. Ratio is ours/peer in the row's unit; for
// a time (lower is better) a ratio above 1 means we are slower.
type row struct {
	figure string
	unit   string
	ours   value
	peer   value
	peerIs string // the peer's name
}

func (r row) ratio() string {
	if !r.ours.ok || !r.peer.ok || r.peer.x == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", r.ours.x/r.peer.x)
}

func (v value) String() string {
	if !v.ok {
		if v.why == "" {
			return "–"
		}
		return v.why
	}
	return formatNumber(v.x)
}

// formatNumber keeps three significant digits, without exponents.
func formatNumber(x float64) string {
	a := math.Abs(x)
	switch {
	case a >= 1000:
		return strconv.FormatFloat(math.Round(x), 'f', 0, 64)
	case a >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case a >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(x, 'f', 2, 64)
	default:
		return strconv.FormatFloat(x, 'f', 3, 64)
	}
}

// writeTable prints rows as a Markdown table: figure | ours | peer | ratio.
func writeTable(w io.Writer, rows []row) {
	fmt.Fprintln(w, "| figure | unit | ours | peer | peer value | ratio ours/peer |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", cell(r.figure), cell(r.unit), cell(r.ours.String()),
			cell(r.peerIs), cell(r.peer.String()), r.ratio())
	}
}

// cell keeps a table cell on one line and free of column separators.
func cell(s string) string {
	s = strings.NewReplacer("|", "/", "\n", " ", "\r", " ").Replace(s)
	if s == "" {
		return "–"
	}
	return s
}
