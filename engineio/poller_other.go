//go:build !linux

package engineio

// Without epoll, every WebSocket connection has a reader goroutine (see
// wsConn.readLoop); newPoller reports that there is no poller.

type poller struct{}

func newPoller() (*poller, error) { return nil, nil }

func (p *poller) arm(c *wsConn) error { return nil }

func (p *poller) forget(c *wsConn) {}

func (p *poller) close() {}
