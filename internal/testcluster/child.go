package testcluster

import (
	"errors"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Child is a process that cannot outlive this one: it gets SIGTERM when
// this process dies (Pdeathsig, which follows the thread that forked, so
// that thread is kept for the child's lifetime) and runs in its own process
// group, so that a terminal's Ctrl-C reaches only this process, which stops
// its children in order. The control plane's processes, the demo's manager
// and the chaos tests' managers are all Children.
//
// Stop and Kill signal the child's process group only while the child has
// not been reaped: once it has, its pid (and so its group id) is free for
// the system to give to another process — with pid_max at 32768 that
// happens within a test run — and a late Stop would signal whatever group
// now has that id (it stopped another test's etcd once).
type Child struct {
	Cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once

	mu sync.Mutex
	// exited is set once the child has exited, before it is reaped: until
	// then its pid is still its own.
	exited bool
	// kill sends a signal (syscall.Kill; tests record it).
	kill func(pid int, sig syscall.Signal) error
}

// StartChild starts cmd as a Child.
func StartChild(cmd *exec.Cmd) (*Child, error) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig, cmd.SysProcAttr.Setpgid = syscall.SIGTERM, true
	c := &Child{Cmd: cmd, done: make(chan struct{}), kill: syscall.Kill}
	started := make(chan error, 1)
	go func() {
		// Locked until the child is gone: Pdeathsig fires when the forking
		// thread exits. Unlocked then rather than left to exit with the
		// goroutine: a goroutine that ends locked takes its thread with it,
		// and that thread may also be the one envtest forked etcd or
		// kube-apiserver from, whose own PR_SET_PDEATHSIG (hack/k8s-bins.sh)
		// would then stop the control plane in the middle of a run.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		waitExited(cmd.Process.Pid)
		c.mu.Lock()
		c.exited = true
		c.mu.Unlock()
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return c, nil
}

// waitExited returns once the process has exited, without reaping it
// (WNOWAIT): cmd.Wait reaps it after.
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, syscall.EINTR) {
			return
		}
	}
}

// signal sends sig to the child's process group unless the child has
// exited (see Child).
func (c *Child) signal(sig syscall.Signal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.exited {
		_ = c.kill(-c.Pid(), sig)
	}
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
		c.signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(grace):
			c.signal(syscall.SIGKILL)
		}
	})
	<-c.done
}

// Kill sends SIGKILL (a crash: no graceful shutdown) and waits until the
// child is gone.
func (c *Child) Kill() {
	c.stopOnce.Do(func() { c.signal(syscall.SIGKILL) })
	<-c.done
}
