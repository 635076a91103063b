package socketio

import (
	"slices"
	"testing"
)

// TestRoomIndexMembers: a room goes from one member (no map) to several
// and back; created/deleted are reported once, members listed exactly.
func TestRoomIndexMembers(t *testing.T) {
	ri := newRoomIndex()
	a, b, c := &Socket{id: "a"}, &Socket{id: "b"}, &Socket{id: "c"}
	members := func() []string {
		var ids []string
		for _, s := range ri.appendMembers(nil, "r") {
			ids = append(ids, s.id)
		}
		slices.Sort(ids)
		return ids
	}
	if !ri.add("r", a) || ri.add("r", a) || ri.size("r") != 1 || !slices.Equal(members(), []string{"a"}) {
		t.Fatalf("one member: size %d, members %v", ri.size("r"), members())
	}
	if ri.remove("r", b) || ri.size("r") != 1 {
		t.Fatal("removing a non-member changed the room")
	}
	if ri.add("r", b) || ri.add("r", c) || ri.size("r") != 3 || !slices.Equal(members(), []string{"a", "b", "c"}) {
		t.Fatalf("three members: size %d, members %v", ri.size("r"), members())
	}
	if ri.remove("r", a) || ri.remove("r", b) || !slices.Equal(members(), []string{"c"}) {
		t.Fatalf("after two removals: %v", members())
	}
	if !ri.remove("r", c) || ri.size("r") != 0 || len(ri.names()) != 0 {
		t.Fatalf("last member removed: size %d, rooms %v", ri.size("r"), ri.names())
	}
	if !ri.add("r", c) || !ri.remove("r", c) {
		t.Fatal("a single-member room is not created and deleted again")
	}
}
