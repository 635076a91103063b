package sioclient

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/operate/realtime/internal/testutil/nodeproc"
)

// startTimeout bounds how long a Node process may take to start (load modules, listen). Node can
// be slow to start on a loaded CI machine, hence more than the default wait.
const startTimeout = 20 * time.Second

// StartNodeServer runs a Node.js server script from tests/node (for example "testserver.mjs") for the
// duration of the test and returns its base URL, "http://127.0.0.1:PORT". The script must listen on
// 127.0.0.1, print its port as the first line on stdout and exit when its stdin closes.
func StartNodeServer(t testing.TB, script string, args ...string) string {
	t.Helper()
	portc := make(chan string, 1)
	p := nodeproc.Start(t, script, "socket.io", script, args, func(_ *nodeproc.Proc, r io.Reader) {
		// Only the first line matters; nodeproc discards the rest.
		line, err := bufio.NewReader(r).ReadString('\n')
		if err == nil {
			portc <- strings.TrimRight(line, "\r\n")
		}
	})
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case port := <-portc:
		if port == "" || strings.Trim(port, "0123456789") != "" {
			t.Fatalf("sioclient: %s: first stdout line is %q, want a port number", script, port)
		}
		return "http://127.0.0.1:" + port
	case <-p.Exited():
		t.Fatalf("sioclient: %s did not print its port: %s", script, p.Diagnostics(0))
	case <-timer.C:
		t.Fatalf("sioclient: %s did not print its port within %v: %s", script, startTimeout, p.Diagnostics(0))
	}
	return ""
}
