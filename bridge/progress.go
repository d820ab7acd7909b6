package bridge

import (
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progressLogEvery is how often a first sync without a terminal logs.
const progressLogEvery = 3 * time.Second

// progress reports a first sync's progress: a bar with an ETA on a
// terminal, otherwise a log line every few seconds. A nil *progress is a
// valid no-op (used for incremental syncs).
type progress struct {
	a       *Account
	bar     *progressbar.ProgressBar
	mu      sync.Mutex
	total   int
	done    int
	start   time.Time
	lastLog time.Time
}

func (a *Account) newProgress(total int) *progress {
	p := &progress{a: a, total: total, start: time.Now(), lastLog: time.Now()}
	if total == 0 {
		return p
	}
	if f, ok := a.cfg.Progress.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions(total,
			progressbar.OptionSetWriter(io.Writer(f)),
			progressbar.OptionSetDescription("first sync"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("msg"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	} else {
		a.log.Info("bridge: first sync started", "messages", total)
	}
	return p
}

func (p *progress) add(n int) {
	if p == nil || p.total == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if p.bar != nil {
		p.bar.Add(n)
		return
	}
	if now := time.Now(); now.Sub(p.lastLog) >= progressLogEvery {
		p.lastLog = now
		elapsed := now.Sub(p.start)
		eta := time.Duration(float64(elapsed) / float64(p.done) * float64(p.total-p.done))
		p.a.log.Info("bridge: first sync", "done", p.done, "total", p.total,
			"eta", eta.Round(time.Second).String())
	}
}

func (p *progress) finish() {
	if p == nil || p.total == 0 {
		return
	}
	p.stop()
	p.a.log.Info("bridge: first sync done", "messages", p.total,
		"took", time.Since(p.start).Round(time.Millisecond).String())
}

func (p *progress) stop() {
	if p != nil && p.bar != nil {
		p.bar.Finish()
	}
}
