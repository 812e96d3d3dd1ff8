package demo

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Level says how a timeline line reads: it only picks a colour, and colour
// is only used on a terminal; the text says everything on its own.
type Level int

// Levels of timeline lines.
const (
	Info Level = iota
	Step
	Warning
	Good
	Bad
)

// subjectWidth pads the subject column: "Subscription/kontor-prod/kontor-1"
// fits.
const subjectWidth = 33

// Timeline prints what happens as it happens, one line each:
//
//	+12.3s  Partner/acme-systems               FailedOver: failed over from contract bytec-de to magirus-de (Magirus)
//
// Times are relative to T0. It is safe for concurrent use.
type Timeline struct {
	mu    sync.Mutex
	w     io.Writer
	t0    time.Time
	color bool
	now   func() time.Time
}

// NewTimeline writes to w with times relative to t0, in colour when color
// is set (see ColorFor).
func NewTimeline(w io.Writer, t0 time.Time, color bool) *Timeline {
	return &Timeline{w: w, t0: t0, color: color, now: time.Now}
}

// ColorFor reports whether f is a terminal that should get colour: a
// character device, NO_COLOR unset and TERM not dumb.
func ColorFor(f *os.File) bool {
	if os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// T0 is the instant the timeline counts from.
func (t *Timeline) T0() time.Time { return t.t0 }

// Rel formats an instant relative to T0, such as "+12.3s".
func (t *Timeline) Rel(at time.Time) string {
	d := at.Sub(t.t0)
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return fmt.Sprintf("%s%.1fs", sign, d.Seconds())
}

// Line prints one timeline line now.
func (t *Timeline) Line(level Level, subject, text string) {
	t.LineAt(t.now(), level, subject, text)
}

// LineAt prints one timeline line stamped with at.
func (t *Timeline) LineAt(at time.Time, level Level, subject, text string) {
	stamp := fmt.Sprintf("%8s", t.Rel(at))
	subj := fmt.Sprintf("%-*s", subjectWidth, subject)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.color {
		stamp = "\x1b[2m" + stamp + "\x1b[0m"
		if c := levelColor(level); c != "" {
			text = c + text + "\x1b[0m"
		}
		subj = "\x1b[1m" + subj + "\x1b[0m"
	}
	fmt.Fprintf(t.w, "%s  %s  %s\n", stamp, subj, text)
}

// Stepf prints a line about what the demo itself does.
func (t *Timeline) Stepf(format string, args ...any) {
	t.Line(Step, "demo", fmt.Sprintf(format, args...))
}

// Warnf prints a warning line about the demo itself.
func (t *Timeline) Warnf(format string, args ...any) {
	t.Line(Warning, "demo", "WARNING: "+fmt.Sprintf(format, args...))
}

// Printf prints free text (headings, tables), atomically with the lines.
func (t *Timeline) Printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, format, args...)
}

// Heading prints a blank line and a heading.
func (t *Timeline) Heading(s string) {
	if t.color {
		s = "\x1b[1m" + s + "\x1b[0m"
	}
	t.Printf("\n%s\n", s)
}

// Verdict prints "PASS  text" or "FAIL  text".
func (t *Timeline) Verdict(ok bool, text string) {
	word, level := "PASS", Good
	if !ok {
		word, level = "FAIL", Bad
	}
	if t.color {
		word = levelColor(level) + word + "\x1b[0m"
	}
	// Continuation lines of a long detail are indented under the text.
	text = strings.ReplaceAll(text, "\n", "\n      ")
	t.Printf("%s  %s\n", word, text)
}

func levelColor(l Level) string {
	switch l {
	case Step:
		return "\x1b[36m"
	case Warning:
		return "\x1b[33m"
	case Good:
		return "\x1b[32m"
	case Bad:
		return "\x1b[31m"
	}
	return ""
}
