package testcluster

import (
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// Child is a process that cannot outlive this one: it gets SIGTERM when
// this process dies (Pdeathsig, which follows the thread that forked, so
// that thread is kept for the child's lifetime) and runs in its own process
// group, so that a terminal's Ctrl-C reaches only this process, which stops
// its children in order. The control plane's processes, the demo's manager
// and the chaos tests' managers are all Children.
type Child struct {
	Cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// StartChild starts cmd as a Child.
func StartChild(cmd *exec.Cmd) (*Child, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig, cmd.SysProcAttr.Setpgid = syscall.SIGTERM, true
	c := &Child{Cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Never unlocked: the thread exits with this goroutine, after the
		// child is gone.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// Pid is the child's process id.
func (c *Child) Pid() int { return c.Cmd.Process.Pid }

// Done is closed once the child has exited and been reaped.
func (c *Child) Done() <-chan struct{} { return c.done }

// Err is how the child exited (valid once Done is closed).
func (c *Child) Err() error { return c.waitErr }

// Stop sends SIGTERM to the child's process group, waits up to grace, then
// sends SIGKILL, and returns once it is gone. Kill is Stop without grace.
// Only the first Stop or Kill acts; later ones wait for the same exit.
func (c *Child) Stop(grace time.Duration) {
	c.stopOnce.Do(func() {
		_ = syscall.Kill(-c.Pid(), syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			_ = syscall.Kill(-c.Pid(), syscall.SIGKILL)
		}
	})
	<-c.done
}

// Kill sends SIGKILL (a crash: no graceful shutdown) and waits until the
// child is gone.
func (c *Child) Kill() {
	c.stopOnce.Do(func() { _ = syscall.Kill(-c.Pid(), syscall.SIGKILL) })
	<-c.done
}
