package events

// FieldKind is the type of a payload field as catalog.json declares it.
type FieldKind uint8

// The field kinds of catalog.json. A validated payload holds, for a field of
// each kind: a JSON string (FieldString, FieldEnum: one of Field.Enum,
// FieldDateTime: an RFC 3339 date-time in the toISOString format), a number
// (FieldNumber; FieldInteger: integral, at most 2^53-1 in magnitude), true
// or false (FieldBoolean), an object (FieldObject, not validated further),
// or an array of Field.Items values (FieldArray).
const (
	FieldString   = FieldKind(kindString)
	FieldNumber   = FieldKind(kindNumber)
	FieldInteger  = FieldKind(kindInteger)
	FieldBoolean  = FieldKind(kindBoolean)
	FieldEnum     = FieldKind(kindEnum)
	FieldDateTime = FieldKind(kindDateTime)
	FieldObject   = FieldKind(kindObject)
	FieldArray    = FieldKind(kindArray)
)

// String returns the kind as catalog.json spells it ("date-time", ...).
func (k FieldKind) String() string {
	switch k {
	case FieldString:
		return "string"
	case FieldNumber:
		return "number"
	case FieldInteger:
		return "integer"
	case FieldBoolean:
		return "boolean"
	case FieldEnum:
		return "enum"
	case FieldDateTime:
		return "date-time"
	case FieldObject:
		return "object"
	case FieldArray:
		return "array"
	}
	return "unknown"
}

// Field describes one field of a payload type, for code that reads payloads
// by their declared types (the gateway's subscription filters).
type Field struct {
	Name     string // the JSON name, e.g. "invoiceId"
	Kind     FieldKind
	Required bool     // present in every validated payload
	Enum     []string // FieldEnum: the allowed values
	Items    *Field   // FieldArray: the type of the elements (never an array); nil otherwise
}

// Fields returns the fields of the event's payload type in catalog order:
// the common fields (timestamp, organizationId, userId) first. Payloads may
// carry other fields too (see the package doc); they are not described. The
// caller owns the returned slice.
func (e EventInfo) Fields() []Field {
	if e.payload == nil {
		return nil
	}
	out := make([]Field, len(e.payload.fields))
	for i := range e.payload.fields {
		out[i] = exportField(&e.payload.fields[i])
	}
	return out
}

func exportField(f *fieldSpec) Field {
	out := Field{
		Name:     f.name,
		Kind:     FieldKind(f.kind),
		Required: f.required,
		Enum:     append([]string(nil), f.enum...),
	}
	if f.items != nil {
		items := exportField(f.items)
		out.Items = &items
	}
	return out
}
