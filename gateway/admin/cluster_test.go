package admin_test

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/operate/realtime/gateway/admin"
	"github.com/operate/realtime/internal/testutil/redistest"
	"github.com/operate/realtime/internal/testutil/sioclient"
	"github.com/operate/realtime/socketio/redisadapter"
)

// startCluster starts two nodes sharing one Redis in the given mode, with
// the UI (operations on, short leases) and the admin key.
func startCluster(t *testing.T, mode redisadapter.Mode) (n1, n2 *node) {
	t.Helper()
	r := redistest.Start(t)
	nodes := make([]*node, 2)
	clusters := make([]*redisadapter.Cluster, 2)
	for i, id := range []string{"node-1", "node-2"} {
		c, err := redisadapter.New(redisadapter.Config{Addr: r.Addr, Mode: mode, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() }) // after the node's shutdown
		clusters[i] = c
		nodes[i] = startNode(t, nodeOptions{id: id, key: adminKey, cluster: c, short: true,
			ui: uiConfig(func(u *admin.UIConfig) { u.Operations = true })})
	}
	// Both namespaces of both nodes listen before anything happens.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	for _, c := range clusters {
		if err := c.WaitSubscribed(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return nodes[0], nodes[1]
}

// TestCluster: a UI connected to one node sees the sockets and stats of
// both, the sockets that connect to the other, and acts on them there; the
// status sums both nodes; the other node stops watching once the UI left.
func TestCluster(t *testing.T) {
	for _, mode := range []redisadapter.Mode{redisadapter.Classic, redisadapter.Streams} {
		t.Run(mode.String(), func(t *testing.T) { testCluster(t, mode) })
	}
}

func testCluster(t *testing.T, mode redisadapter.Mode) {
	n1, n2 := startCluster(t, mode)
	d := sioclient.Start(t)
	join(t, d, n1, "org_a", "u1", sioclient.Options{})
	join(t, d, n2, "org_a", "u2", sioclient.Options{})
	join(t, d, n2, "org_b", "u3", sioclient.Options{})

	ui := login(d, n1, credentials())
	ui.WaitConnect()
	var sockets []shownSocket
	decode(t, ui.Next("all_sockets"), 0, &sockets)
	var users []string
	for _, s := range sockets {
		users = append(users, s.Data.UserID)
	}
	slices.Sort(users)
	if !slices.Equal(users, []string{"u1", "u2", "u3"}) {
		t.Errorf("all_sockets lists %v, want the sockets of both nodes", users)
	}
	if st := nextStats(t, ui, "node-2"); st.Namespaces[0].SocketsCount != 2 {
		t.Errorf("node-2's stats: %+v", st)
	}
	nextStats(t, ui, "node-1")
	if !n2.adm.Watching() {
		t.Error("node-2 sends stats but does not watch")
	}

	// A socket connecting to node-2 is shown, and disconnected from node-1.
	c := join(t, d, n2, "org_b", "u4", sioclient.Options{})
	sid := c.State().SID
	var connected shownSocket
	decode(t, ui.Next("socket_connected"), 0, &connected)
	if connected.ID != sid {
		t.Errorf("socket_connected %s, want %s", connected.ID, sid)
	}
	ui.Emit("_disconnect", "/events", false, sid)
	if got := c.WaitDisconnect(); got != "io server disconnect" {
		t.Errorf("disconnected with %q", got)
	}
	if ev := ui.Next("socket_disconnected"); str(t, ev, 1) != sid {
		t.Errorf("socket_disconnected %s, want %s", ev, sid)
	}

	st := status(t, n1, "")
	if !st.Cluster.Complete || st.Cluster.Mode != "redis" || st.Cluster.Nodes != 2 || st.Cluster.Connections != 3 || len(st.Nodes) != 2 {
		t.Fatalf("status %+v", st)
	}
	if st.Nodes[0].ID != "node-1" || st.Nodes[0].Connections != 1 || st.Nodes[1].ID != "node-2" || st.Nodes[1].Connections != 2 {
		t.Errorf("nodes %+v", st.Nodes)
	}
	for _, nd := range st.Nodes {
		if nd.Redis == nil || !nd.Redis.Ready || nd.Redis.Mode != mode.String() || nd.Redis.Published == 0 {
			t.Errorf("%s: redis %+v", nd.ID, nd.Redis)
		}
	}
	if st.Nodes[0].AdminUIs != 1 || st.Nodes[1].AdminUIs != 0 {
		t.Errorf("admin UIs: %d, %d", st.Nodes[0].AdminUIs, st.Nodes[1].AdminUIs)
	}
	want := []admin.OrganizationCount{{OrganizationID: "org_a", Connections: 2}, {OrganizationID: "org_b", Connections: 1}}
	if !slices.Equal(st.Organizations, want) {
		t.Errorf("busiest %v, want %v (summed across nodes)", st.Organizations, want)
	}

	ui.Close()
	deadline := time.Now().Add(waitTimeout)
	for n1.adm.Watching() || n2.adm.Watching() {
		if time.Now().After(deadline) {
			t.Fatalf("still watching after the UI left: node-1 %t, node-2 %t", n1.adm.Watching(), n2.adm.Watching())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
