package filter

import (
	"fmt"
	"reflect"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/common/types/ref"
	"cel.dev/cel-go/common/types/traits"

	"github.com/operate/realtime/gateway/events"
)

// payloadType is a catalog payload type (InvoicePayload, ...) as a CEL
// struct type. Its values are *Payload: a field reads the value decoded for
// it, so a program never looks at JSON.
type payloadType struct {
	name   string
	fields []events.Field
	index  map[string]int // field name → position in fields and Payload.values
	cel    map[string]*types.FieldType
	names  []string
	// absent[i] is the error of reading field i when a payload lacks it:
	// built once, as evaluation must not allocate one per event.
	absent []error
}

func newPayloadType(name string, fields []events.Field) (*payloadType, error) {
	t := &payloadType{
		name:   name,
		fields: fields,
		index:  make(map[string]int, len(fields)),
		cel:    make(map[string]*types.FieldType, len(fields)),
		names:  make([]string, len(fields)),
		absent: make([]error, len(fields)),
	}
	for i, f := range fields {
		ct, err := celType(f)
		if err != nil {
			return nil, fmt.Errorf("filter: %s.%s: %w", name, f.Name, err)
		}
		t.index[f.Name] = i
		t.names[i] = f.Name
		t.absent[i] = fmt.Errorf("no such key: %s", f.Name)
		t.cel[f.Name] = &types.FieldType{
			Type: ct,
			IsSet: func(target any) bool {
				p, ok := target.(*Payload)
				return ok && p.typ == t && p.values[i] != nil
			},
			GetFrom: func(target any) (any, error) {
				p, ok := target.(*Payload)
				if !ok || p.typ != t {
					return nil, fmt.Errorf("filter: %T is not a %s", target, name)
				}
				if v := p.values[i]; v != nil {
					return v, nil
				}
				return nil, t.absent[i]
			},
		}
	}
	return t, nil
}

// celType is the CEL type of a field's values.
func celType(f events.Field) (*types.Type, error) {
	switch f.Kind {
	case events.FieldString, events.FieldEnum:
		return types.StringType, nil
	case events.FieldNumber:
		return types.DoubleType, nil
	case events.FieldInteger:
		return types.IntType, nil
	case events.FieldBoolean:
		return types.BoolType, nil
	case events.FieldDateTime:
		return types.TimestampType, nil
	case events.FieldObject:
		return types.NewMapType(types.StringType, types.DynType), nil
	case events.FieldArray:
		if f.Items == nil {
			return nil, fmt.Errorf("array without an item type")
		}
		item, err := celType(*f.Items)
		if err != nil {
			return nil, err
		}
		return types.NewListType(item), nil
	}
	return nil, fmt.Errorf("unknown field kind %s", f.Kind)
}

// HasTrait implements ref.Type: fields can be read and tested for presence.
func (t *payloadType) HasTrait(trait int) bool {
	return trait == traits.FieldTesterType || trait == traits.IndexerType
}

// TypeName implements ref.Type.
func (t *payloadType) TypeName() string { return t.name }

// ReflectType implements types.StructTypeDescriptor: no Go type backs it.
func (t *payloadType) ReflectType() reflect.Type { return nil }

// FieldNames implements types.StructTypeDescriptor.
func (t *payloadType) FieldNames() []string { return t.names }

// FindFieldType implements types.StructTypeDescriptor.
func (t *payloadType) FindFieldType(name string) (*types.FieldType, bool) {
	ft, ok := t.cel[name]
	return ft, ok
}

// NewValue implements types.StructTypeDescriptor. Filters read payloads;
// they do not build them.
func (t *payloadType) NewValue(types.Adapter, map[string]ref.Val) ref.Val {
	return types.NewErr("filter: %s values cannot be created", t.name)
}

// Adapt implements types.StructTypeDescriptor.
func (t *payloadType) Adapt(_ types.Adapter, v any) ref.Val {
	return types.NewErr("filter: %T is not a %s", v, t.name)
}
