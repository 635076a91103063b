package events

import (
	"strings"
)

// Match reports whether a subscription pattern matches an event name. A pattern is an exact
// event name or "<domain>:*" for every event of a domain. Match does not check that the
// pattern is known: use ExpandPatterns for client input.
func Match(pattern string, name Name) bool {
	if domain, ok := strings.CutSuffix(pattern, ":*"); ok {
		return domain != "" && domain == name.Domain()
	}
	return pattern == string(name)
}

// ExpandPatterns resolves subscription patterns (exact names or "<domain>:*") to event names,
// in catalog order and without duplicates. Unknown names or domains are a *ValidationError
// with code unknown_event that lists all of them.
func ExpandPatterns(patterns []string) ([]Name, error) {
	var (
		want    [len(eventTable)]bool
		unknown []string
	)
	for _, p := range patterns {
		if domain, ok := strings.CutSuffix(p, ":*"); ok {
			if !knownDomain(domain) {
				unknown = append(unknown, quote(p))
				continue
			}
			for i := range eventTable {
				want[i] = want[i] || eventTable[i].Domain == domain
			}
			continue
		}
		i := eventIndex(p)
		if i < 0 {
			unknown = append(unknown, quote(p))
			continue
		}
		want[i] = true
	}
	if len(unknown) > 0 {
		return nil, &ValidationError{
			Code:    CodeUnknownEvent,
			Message: "unknown event names or domains: " + strings.Join(unknown, ", "),
			Field:   "patterns",
		}
	}
	var names []Name
	for i, ok := range want {
		if ok {
			names = append(names, eventTable[i].Name)
		}
	}
	return names, nil
}
