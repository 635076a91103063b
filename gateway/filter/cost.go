package filter

import (
	"cel.dev/cel-go/common/cost"
)

// maxPayloadBytes bounds the size estimates of payload values: a payload
// is at most what the HTTP API accepts (httpapi.DefaultMaxBodyBytes).
const maxPayloadBytes = 1 << 20

// sizes tells CEL's cost estimator how large payload values can be, so that
// an expression's worst case is finite: a string, list or map read from
// the payload has at most maxPayloadBytes elements.
type sizes struct{}

func (sizes) EstimateSize(n cost.AstNode) *cost.SizeEstimate {
	if p := n.Path(); len(p) > 0 && p[0] == varPayload {
		return &cost.SizeEstimate{Min: 0, Max: maxPayloadBytes}
	}
	if p := n.Path(); len(p) > 0 && p[0] == varEvent {
		return &cost.SizeEstimate{Min: 0, Max: 64}
	}
	return nil
}

func (sizes) EstimateCallCost(function, overloadID string, target *cost.AstNode, args []cost.AstNode) *cost.CallEstimate {
	return nil
}
