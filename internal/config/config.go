// Package config defines Gregor's broker and topic properties under
// Kafka's own names, their types, defaults and documentation, and resolves
// effective values from several sources.
//
// Broker properties come, in increasing precedence, from defaults, a
// server.properties file (--config), GREGOR_* environment variables and
// --set flags; dynamic broker overrides stored in cluster metadata sit on
// top. A topic property resolves from the topic's own override, then its
// broker synonym (e.g. retention.ms ← log.retention.ms ←
// log.retention.minutes ← log.retention.hours), then the default.
package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Type is a property's value type, as DescribeConfigs reports it.
type Type int8

// Types, numbered as Kafka's DescribeConfigs ConfigType.
const (
	TypeBoolean  Type = 1
	TypeString   Type = 2
	TypeInt      Type = 3
	TypeShort    Type = 4
	TypeLong     Type = 5
	TypeDouble   Type = 6
	TypeList     Type = 7
	TypeClass    Type = 8
	TypePassword Type = 9
)

// ErrInvalid marks a bad property name or value; the broker maps it to
// INVALID_CONFIG.
var ErrInvalid = errors.New("invalid config")

// Def describes one property.
type Def struct {
	Name    string
	Type    Type
	Default string // "" with HasNoDefault means null
	Doc     string
	// Synonyms lists the broker properties a topic property falls back
	// to, most specific first, each with a unit conversion.
	Synonyms []Synonym
	// Dynamic reports a broker property that can change without restart
	// (AlterConfigs on the broker resource).
	Dynamic bool
	// ReadOnly marks properties that can never be altered at runtime.
	ReadOnly bool
	// Sensitive values are never returned by DescribeConfigs.
	Sensitive bool
	// Valid checks a value (already known to parse as Type); nil = any.
	Valid func(string) error
	// Enum lists the allowed values of a string or list property.
	Enum []string
	// Min and Max bound numeric values (inclusive) when Bounded.
	Bounded  bool
	Min, Max float64
	// Null reports that the default is null (no value).
	Null bool
}

// Synonym is a broker property that supplies a topic property's default.
type Synonym struct {
	Name string
	// Scale converts the synonym's unit to the topic property's unit
	// (e.g. 3600000 for hours → ms); 0 means 1.
	Scale int64
}

// Registry is a set of property definitions.
type Registry struct {
	defs  map[string]*Def
	names []string
}

func newRegistry(defs []Def) *Registry {
	r := &Registry{defs: make(map[string]*Def, len(defs))}
	for i := range defs {
		d := &defs[i]
		if _, dup := r.defs[d.Name]; dup {
			panic("config: duplicate definition " + d.Name) // programming error at init
		}
		r.defs[d.Name] = d
		r.names = append(r.names, d.Name)
	}
	slices.Sort(r.names)
	return r
}

// Lookup returns the definition of name.
func (r *Registry) Lookup(name string) (*Def, bool) {
	d, ok := r.defs[name]
	return d, ok
}

// Names returns every defined name, sorted.
func (r *Registry) Names() []string { return r.names }

// Validate checks that name is defined and value is valid for it.
func (r *Registry) Validate(name, value string) error {
	d, ok := r.defs[name]
	if !ok {
		return fmt.Errorf("%w: unknown property %q", ErrInvalid, name)
	}
	return d.Check(value)
}

// Check validates value against the definition.
func (d *Def) Check(value string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: %s=%q: %s", ErrInvalid, d.Name, value, why)
	}
	v := strings.TrimSpace(value)
	var num float64
	switch d.Type {
	case TypeBoolean:
		if v != "true" && v != "false" {
			return bad("not a boolean")
		}
	case TypeInt, TypeShort, TypeLong:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return bad("not an integer")
		}
		if d.Type == TypeInt && (n < math.MinInt32 || n > math.MaxInt32) {
			return bad("out of int range")
		}
		if d.Type == TypeShort && (n < math.MinInt16 || n > math.MaxInt16) {
			return bad("out of short range")
		}
		num = float64(n)
	case TypeDouble:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) {
			return bad("not a number")
		}
		num = f
	case TypeList:
		if len(d.Enum) > 0 {
			for _, item := range SplitList(v) {
				if !slices.Contains(d.Enum, item) {
					return bad("must be a list of " + strings.Join(d.Enum, ", "))
				}
			}
		}
	default:
		if len(d.Enum) > 0 && !slices.Contains(d.Enum, v) {
			return bad("must be one of " + strings.Join(d.Enum, ", "))
		}
	}
	if d.Bounded && (num < d.Min || num > d.Max) {
		return bad(fmt.Sprintf("must be in [%v, %v]", d.Min, d.Max))
	}
	if d.Valid != nil {
		if err := d.Valid(v); err != nil {
			return bad(err.Error())
		}
	}
	return nil
}

// SplitList splits a comma-separated list value, trimming spaces and
// dropping empty items.
func SplitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func atLeast(min float64) func(*Def) {
	return func(d *Def) { d.Bounded, d.Min, d.Max = true, min, math.MaxFloat64 }
}
