package filter

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"
	"weak"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/operate/realtime/gateway/events"
)

// The variables of a filter expression.
const (
	varPayload = "payload"
	varEvent   = "event"
)

// Defaults applied by NewCompiler for zero-valued Config fields.
const (
	// DefaultMaxLength bounds an expression, in bytes.
	DefaultMaxLength = 1024
	// DefaultMaxPayload is the payload size cost estimates assume: what the
	// HTTP API accepts (httpapi.DefaultMaxBodyBytes).
	DefaultMaxPayload = 1 << 20
	// DefaultMaxCost bounds the estimated worst-case cost of an expression,
	// in CEL's cost units: about one per comparison, field read or list
	// element visited, a tenth per character a string function reads. The
	// estimate takes every string, list and map of the payload to be as
	// large as a whole payload can be (DefaultMaxPayload), so the bound is
	// "linear in the payload": a filter may scan a list or a string a few
	// times (an event's delivery costs as much), but not compare every pair
	// of elements or run a regular expression on each. Conditions on a few
	// fields cost under 20.
	DefaultMaxCost = 10 * DefaultMaxPayload
	// maxRecursion bounds the nesting of an expression.
	maxRecursion = 32
)

// Config configures a Compiler. The zero value is the defaults.
type Config struct {
	// MaxLength bounds the length of an expression in bytes. Zero means
	// DefaultMaxLength.
	MaxLength int
	// MaxCost bounds the estimated worst-case cost of evaluating an
	// expression once on a payload of up to MaxPayload bytes; evaluations
	// on larger payloads are stopped at it. Zero means DefaultMaxCost.
	MaxCost uint64
	// MaxPayload is the payload size the estimates assume. Zero means
	// DefaultMaxPayload.
	MaxPayload int
}

// Compiler compiles filter expressions for the catalog's payload types. It
// is safe for concurrent use.
type Compiler struct {
	// Static after construction.
	maxLength  int
	maxCost    uint64
	maxPayload int
	byType     map[string]*typeEnv // by payload type name
	byEvent    map[string]*typeEnv // by event name

	mu sync.Mutex
	// programs shares compiled programs: the same expression for the same
	// type is one Program while anything holds it, so that recipients with
	// equal filters evaluate it once per event. Entries go when their
	// program is collected.
	programs map[programKey]weak.Pointer[Program]
}

// typeEnv is the CEL environment of one payload type.
type typeEnv struct {
	typ     *payloadType
	env     *cel.Env
	adapter types.Adapter
}

type programKey struct{ expr, payloadType string }

// Program is a compiled filter expression for one payload type.
type Program struct {
	expr string
	typ  *payloadType
	// prg runs without tracking its cost: the estimate checked at
	// compilation bounds it for every payload up to maxPayload bytes, and
	// tracking would cost more than the evaluation (allocations included).
	// limited stops at the cost limit, for larger payloads, which only
	// publishers that bypass the HTTP API can send.
	prg, limited cel.Program
	maxPayload   int
}

// Expression returns the source of the program.
func (p *Program) Expression() string { return p.expr }

// PayloadType returns the name of the payload type the program reads.
func (p *Program) PayloadType() string { return p.typ.name }

// Error is a refused expression: Reason says why, for the client that wrote
// it.
type Error struct {
	PayloadType string // the type the expression was checked against; "" when not reached
	Reason      string
}

func (e *Error) Error() string {
	if e.PayloadType == "" {
		return "filter: " + e.Reason
	}
	return "filter for " + e.PayloadType + ": " + e.Reason
}

// NewCompiler builds the CEL environments of the catalog's payload types.
func NewCompiler(cfg Config) (*Compiler, error) {
	c := &Compiler{
		maxLength:  cfg.MaxLength,
		maxCost:    cfg.MaxCost,
		maxPayload: cfg.MaxPayload,
		byType:     make(map[string]*typeEnv),
		byEvent:    make(map[string]*typeEnv),
		programs:   make(map[programKey]weak.Pointer[Program]),
	}
	if c.maxLength <= 0 {
		c.maxLength = DefaultMaxLength
	}
	if c.maxCost == 0 {
		c.maxCost = DefaultMaxCost
	}
	if c.maxPayload <= 0 {
		c.maxPayload = DefaultMaxPayload
	}
	for _, info := range events.Events() {
		te, ok := c.byType[info.PayloadType]
		if !ok {
			var err error
			if te, err = newTypeEnv(info.PayloadType, info.Fields(), c.maxLength); err != nil {
				return nil, err
			}
			c.byType[info.PayloadType] = te
		}
		c.byEvent[string(info.Name)] = te
	}
	return c, nil
}

func newTypeEnv(name string, fields []events.Field, maxLength int) (*typeEnv, error) {
	typ, err := newPayloadType(name, fields)
	if err != nil {
		return nil, err
	}
	env, err := cel.NewEnv(
		cel.Types(typ),
		cel.Variable(varPayload, cel.ObjectType(name)),
		cel.Variable(varEvent, cel.StringType),
		cel.ParserExpressionSizeLimit(maxLength),
		cel.ParserRecursionLimit(maxRecursion),
		cel.CrossTypeNumericComparisons(true),
		cel.DefaultUTCTimeZone(true),
		cel.OptionalTypes(), // payload.?amount.orValue(0.0): a default for what a payload lacks
	)
	if err != nil {
		return nil, fmt.Errorf("filter: CEL environment of %s: %w", name, err)
	}
	return &typeEnv{typ: typ, env: env, adapter: env.CELTypeAdapter()}, nil
}

// Compile returns the program of expr for the payload type of the named
// event. The same expression for the same payload type gives the same
// *Program as long as one is in use. Refusals are *Error.
func (c *Compiler) Compile(expr string, event events.Name) (*Program, error) {
	te, ok := c.byEvent[string(event)]
	if !ok {
		return nil, &Error{Reason: fmt.Sprintf("unknown event %q", event)}
	}
	key := programKey{expr, te.typ.name}
	if p := c.cached(key); p != nil {
		return p, nil
	}
	p, err := c.compile(expr, te)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if q := c.programs[key].Value(); q != nil {
		return q, nil // compiled meanwhile by another request: share that one
	}
	wp := weak.Make(p)
	c.programs[key] = wp
	runtime.AddCleanup(p, c.forget, cachedProgram{key, wp})
	return p, nil
}

type cachedProgram struct {
	key programKey
	wp  weak.Pointer[Program]
}

func (c *Compiler) cached(key programKey) *Program {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.programs[key].Value()
}

// forget drops the entry of a collected program, unless it was replaced.
func (c *Compiler) forget(e cachedProgram) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.programs[e.key] == e.wp {
		delete(c.programs, e.key)
	}
}

// cachedPrograms returns the number of programs in the cache, for tests.
func (c *Compiler) cachedPrograms() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.programs)
}

func (c *Compiler) compile(expr string, te *typeEnv) (*Program, error) {
	refuse := func(format string, args ...any) error {
		return &Error{PayloadType: te.typ.name, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case strings.TrimSpace(expr) == "":
		return nil, &Error{Reason: "the expression is empty"}
	case len(expr) > c.maxLength:
		return nil, &Error{Reason: fmt.Sprintf("the expression is %d bytes long, at most %d are allowed", len(expr), c.maxLength)}
	case !utf8.ValidString(expr):
		return nil, &Error{Reason: "the expression is not valid UTF-8"}
	}
	ast, iss := te.env.Compile(expr)
	if iss.Err() != nil {
		return nil, refuse("%s", issues(iss))
	}
	if !ast.OutputType().IsExactType(types.BoolType) {
		return nil, refuse("the expression is a %s, it must be a bool", ast.OutputType())
	}
	est, err := te.env.EstimateCost(ast, sizes{maxPayload: uint64(c.maxPayload)})
	if err != nil {
		return nil, refuse("estimating its cost: %v", err)
	}
	if est.Max > c.maxCost {
		return nil, refuse("the expression may cost up to %s to evaluate, more than the limit of %d", costString(est.Max), c.maxCost)
	}
	prg, err := te.env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, refuse("%v", err)
	}
	limited, err := te.env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.CostLimit(c.maxCost))
	if err != nil {
		return nil, refuse("%v", err)
	}
	return &Program{expr: expr, typ: te.typ, prg: prg, limited: limited, maxPayload: c.maxPayload}, nil
}

// issues formats CEL's compile errors on one line each, without the
// source excerpt: "1:9: undefined field 'amout'".
func issues(iss *cel.Issues) string {
	var b strings.Builder
	for i, e := range iss.Errors() {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%d:%d: %s", e.Location.Line(), e.Location.Column()+1, e.Message)
	}
	return b.String()
}

func costString(c uint64) string {
	if c == ^uint64(0) {
		return "an unbounded amount"
	}
	return fmt.Sprint(c)
}

// Decode reads an event's JSON payload for the programs of its payload
// type. It returns nil for an event that is not in the catalog.
func (c *Compiler) Decode(event string, payload []byte) *Payload {
	te, ok := c.byEvent[event]
	if !ok {
		return nil
	}
	return decodePayload(te.typ, te.adapter, event, payload)
}

// Match reports whether the payload passes the filter. A payload of
// another type, an optional field the payload lacks, any other runtime
// error, or a cost above the limit: it does not.
func (p *Program) Match(pl *Payload) bool {
	if pl == nil || pl.typ != p.typ {
		return false
	}
	prg := p.prg
	if pl.size > p.maxPayload {
		prg = p.limited
	}
	out, _, err := prg.Eval(pl)
	if err != nil {
		return false
	}
	b, ok := out.(types.Bool)
	return ok && bool(b)
}
