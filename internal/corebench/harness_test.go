package corebench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		if err := runChild(spec); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// child is a running load-generator process.
type child struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Scanner
}

func startChild(tb testing.TB, mode, addr string, n int) *child {
	tb.Helper()
	return startChildSpec(tb, mode+" "+addr+" "+strconv.Itoa(n))
}

// startChildSpec starts a child with the given spec (see runChild) and
// waits for its "ready".
func startChildSpec(tb testing.TB, spec string) *child {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+spec)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	c := &child{cmd: cmd, in: in, out: bufio.NewScanner(outPipe)}
	tb.Cleanup(func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	if line := c.line(tb); line != "ready" {
		tb.Fatalf("child: %q", line)
	}
	return c
}

func (c *child) line(tb testing.TB) string {
	tb.Helper()
	if !c.out.Scan() {
		tb.Fatalf("child exited: %v", c.out.Err())
	}
	return c.out.Text()
}

// expect waits until the child has received total messages (or bytes).
func (c *child) expect(tb testing.TB, total int64) {
	tb.Helper()
	fmt.Fprintf(c.in, "expect %d\n", total)
	line := c.line(tb)
	got, _ := strconv.ParseInt(strings.TrimPrefix(line, "done "), 10, 64)
	if got < total {
		tb.Fatalf("child received %d of %d", got, total)
	}
}

// cpuTime returns this process's user+system CPU time.
func cpuTime() time.Duration {
	user, sys := cpuTimes()
	return user + sys
}

// cpuTimes is the process's CPU time in user space and in the kernel.
func cpuTimes() (user, sys time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// memSnapshot is the process's memory after a full collection.
type memSnapshot struct {
	heap, stack, rss uint64
	goroutines       int
}

func snapshot() memSnapshot {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{heap: ms.HeapInuse, stack: ms.StackInuse, rss: rssBytes(), goroutines: runtime.NumGoroutine()}
}

func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseUint(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}
