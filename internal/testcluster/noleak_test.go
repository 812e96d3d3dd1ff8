package testcluster_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/partnerops/entitlement-operator/internal/testcluster"
)

// childMode, when set, makes this test binary the child of
// TestNoProcessLeftWhenTheTestProcessDies: it starts a control plane, prints
// the PIDs, then dies the way it is told.
const childEnv = "TESTCLUSTER_NOLEAK_CHILD"

func TestNoProcessLeftWhenTheTestProcessDies(t *testing.T) {
	if mode := os.Getenv(childEnv); mode != "" {
		runChild(mode)
		return
	}
	if testing.Short() {
		t.Skip("needs the local control plane")
	}
	for _, mode := range []string{"panic", "sigkill", "sigint"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestNoProcessLeftWhenTheTestProcessDies$", "-test.v")
			cmd.Env = append(os.Environ(), childEnv+"="+mode)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = cmd.Stdout
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pids []int
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if rest, ok := strings.CutPrefix(sc.Text(), "PIDS "); ok {
					for _, f := range strings.Fields(rest) {
						pid, _ := strconv.Atoi(f)
						pids = append(pids, pid)
					}
					break
				}
			}
			if len(pids) != 3 {
				_ = cmd.Process.Kill()
				t.Fatalf("child did not report 3 control-plane PIDs: %v", pids)
			}
			switch mode {
			case "sigkill":
				_ = cmd.Process.Signal(syscall.SIGKILL)
			case "sigint":
				_ = cmd.Process.Signal(syscall.SIGINT)
			}
			go func() { // drain
				for sc.Scan() {
				}
			}()
			_ = cmd.Wait()
			if err := testcluster.Poll(30*time.Second, func() error {
				for _, pid := range pids {
					if alive(pid) {
						return fmt.Errorf("pid %d still running", pid)
					}
				}
				return nil
			}); err != nil {
				t.Fatalf("after the test process died (%s): %v", mode, err)
			}
			t.Logf("%s: control-plane processes %v all gone", mode, pids)
		})
	}
}

func runChild(mode string) {
	c, err := testcluster.Start(testcluster.Options{})
	if err != nil {
		fmt.Println("start:", err)
		os.Exit(2)
	}
	pids := c.PIDs()
	strs := make([]string, len(pids))
	for i, p := range pids {
		strs[i] = strconv.Itoa(p)
	}
	fmt.Println("PIDS " + strings.Join(strs, " "))
	if mode == "panic" {
		panic("a test panicked with the control plane running")
	}
	select {} // wait to be killed or interrupted
}
