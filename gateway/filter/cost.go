package filter

import (
	"cel.dev/cel-go/common/cost"
)

// sizes tells CEL's cost estimator how large payload values can be, so that
// an expression's worst case is finite: a string, list or map read from a
// payload of at most maxPayload bytes has at most that many elements.
type sizes struct{ maxPayload uint64 }

// maxEventName bounds the length of the event variable (catalog names).
const maxEventName = 64

func (z sizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	p := n.Path()
	switch {
	case len(p) > 0 && p[0] == varPayload:
		return &cost.SizeEstimate{Min: 0, Max: z.maxPayload}
	case len(p) > 0 && p[0] == varEvent:
		return &cost.SizeEstimate{Min: 0, Max: maxEventName}
	}
	return nil
}

func (sizes) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil
}
