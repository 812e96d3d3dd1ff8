package testcluster

import (
	"os/exec"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// recordKills makes c record every signal it sends, and still send it.
func recordKills(c *Child) func() []syscall.Signal {
	var mu sync.Mutex
	var sent []syscall.Signal
	c.mu.Lock()
	c.kill = func(pid int, sig syscall.Signal) error {
		mu.Lock()
		sent = append(sent, sig)
		mu.Unlock()
		return syscall.Kill(pid, sig)
	}
	c.mu.Unlock()
	return func() []syscall.Signal { mu.Lock(); defer mu.Unlock(); return slices.Clone(sent) }
}

// TestStopAfterExitSignalsNothing: a Child that exited by itself has been
// reaped, and its pid may already be another process's: Stop and Kill must
// not signal its old process group.
func TestStopAfterExitSignalsNothing(t *testing.T) {
	c, err := StartChild(exec.Command("true"))
	if err != nil {
		t.Fatal(err)
	}
	sent := recordKills(c)
	select {
	case <-c.Done():
	case <-time.After(30 * time.Second):
		t.Fatal("true did not exit within 30s")
	}
	c.Stop(time.Second)
	c.Kill()
	if got := sent(); len(got) != 0 {
		t.Errorf("Stop and Kill after the child exited sent %v, want nothing", got)
	}
}

// TestStopSignalsARunningChild: a running Child gets SIGTERM and is gone
// when Stop returns.
func TestStopSignalsARunningChild(t *testing.T) {
	c, err := StartChild(exec.Command("sleep", "600"))
	if err != nil {
		t.Fatal(err)
	}
	sent := recordKills(c)
	c.Stop(30 * time.Second)
	if got := sent(); len(got) == 0 || got[0] != syscall.SIGTERM {
		t.Errorf("Stop of a running child sent %v, want SIGTERM first", got)
	}
	select {
	case <-c.Done():
	default:
		t.Error("Stop returned before the child was gone")
	}
}
