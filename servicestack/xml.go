package servicestack

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
)

// The namespaces of ServiceStack's XML: its DTOs' own, and XML Schema
// instance's for i:nil.
const (
	xmlnsServiceStack = "http://schemas.servicestack.net/types"
	xmlnsInstance     = "http://www.w3.org/2001/XMLSchema-instance"
)

// xmlNamer is a type that names its elements in lists, as
// [DataContract(Name=…)] renames a .NET type.
type xmlNamer interface{ xmlName() string }

// xmlDeclarationOrdered is a type whose members keep their declaration
// order, as explicit [DataMember(Order=…)] keeps them.
type xmlDeclarationOrdered interface{ xmlDeclarationOrder() }

// The reflect types of the two interfaces, for Implements.
var (
	xmlNamerType   = reflect.TypeFor[xmlNamer]()
	xmlOrderedType = reflect.TypeFor[xmlDeclarationOrdered]()
)

// encodeXML writes v as .NET's DataContractSerializer does for
// ServiceStack: the root element <op>Response in ServiceStack's namespace
// (ArrayOf<Item> for a bare list, as DataContract names a List<Item>);
// members as elements named by their PascalCase JSON names, in ordinal
// alphabetical order as DataContract orders members without an explicit
// order; lists as a wrapper element with one element per item named after
// the item's type; records nested as elements; members JSON leaves out as
// i:nil. Guids are dashed, as .NET writes them; Time as in JSON.
func encodeXML(b *bytes.Buffer, op string, v any) error {
	rv := indirect(reflect.ValueOf(v))
	root := op + "Response"
	if rv.IsValid() && isList(rv) {
		root = "ArrayOf" + xmlItemName(rv.Type().Elem())
	}
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>`)
	fmt.Fprintf(b, `<%s xmlns:i="%s" xmlns="%s">`, root, xmlnsInstance, xmlnsServiceStack)
	if rv.IsValid() {
		if err := writeXMLContent(b, rv); err != nil {
			return err
		}
	}
	fmt.Fprintf(b, "</%s>", root)
	return nil
}

// writeXMLElement writes v as the element name.
func writeXMLElement(b *bytes.Buffer, name string, v reflect.Value) error {
	v = indirect(v)
	if !v.IsValid() {
		fmt.Fprintf(b, `<%s i:nil="true"/>`, name)
		return nil
	}
	b.WriteByte('<')
	b.WriteString(name)
	b.WriteByte('>')
	if err := writeXMLContent(b, v); err != nil {
		return err
	}
	b.WriteString("</")
	b.WriteString(name)
	b.WriteByte('>')
	return nil
}

// guidType is Guid's reflect type: XML writes it in its own form.
var guidType = reflect.TypeFor[Guid]()

// writeXMLContent writes what goes inside v's element.
func writeXMLContent(b *bytes.Buffer, v reflect.Value) error {
	if v.Type() == guidType && v.CanInterface() {
		b.WriteString(dashedGUID(v.Interface().(Guid)))
		return nil
	}
	if s, ok, err := marshalText(v); ok || err != nil {
		xml.EscapeText(b, []byte(s))
		return err
	}
	if s, ok, err := scalarText(v); ok || err != nil {
		xml.EscapeText(b, []byte(s))
		return err
	}
	switch v.Kind() {
	case reflect.Struct:
		return writeXMLMembers(b, v)
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 { // base64Binary, as in JSON
			b.WriteString(base64.StdEncoding.EncodeToString(byteSlice(v)))
			return nil
		}
		item := xmlItemName(v.Type().Elem())
		for i := range v.Len() {
			if err := writeXMLElement(b, item, v.Index(i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		return writeXMLMap(b, v)
	}
	return fmt.Errorf("unsupported type %s", v.Type())
}

// writeXMLMembers writes every field of struct v. A field JSON leaves out
// is null, written as <Name i:nil="true"/>: DataContractSerializer writes
// every member, nulls included.
func writeXMLMembers(b *bytes.Buffer, v reflect.Value) error {
	for _, f := range xmlFields(v.Type()) {
		fv, ok := fieldByIndex(v, f.index)
		if !ok || f.omitted(fv) {
			fmt.Fprintf(b, `<%s i:nil="true"/>`, f.wire)
			continue
		}
		if err := writeXMLElement(b, f.wire, fv); err != nil {
			return fmt.Errorf("field %s: %w", f.name, err)
		}
	}
	return nil
}

// dashedGUID writes g as DataContractSerializer writes a Guid: lowercase,
// dashed, 8-4-4-4-12.
func dashedGUID(g Guid) string {
	h := g.String()
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// xmlFieldCache maps a struct type to its fields in XML order.
var xmlFieldCache sync.Map

// xmlFields returns the fields of struct type t in XML order: ordinal
// alphabetical by PascalCase name, unless the type keeps declaration order.
func xmlFields(t reflect.Type) []wireField {
	if c, ok := xmlFieldCache.Load(t); ok {
		return c.([]wireField)
	}
	fields := typeFields(t)
	if !t.Implements(xmlOrderedType) {
		fields = slices.Clone(fields)
		slices.SortStableFunc(fields, func(x, y wireField) int { return cmp.Compare(x.wire, y.wire) })
	}
	c, _ := xmlFieldCache.LoadOrStore(t, fields)
	return c.([]wireField)
}

// writeXMLMap writes a map as DataContract writes a Dictionary: one
// KeyValueOf<K><V> element per entry with a Key and a Value, here in key
// order so that the output is stable.
func writeXMLMap(b *bytes.Buffer, v reflect.Value) error {
	entries, err := mapEntries(v)
	if err != nil {
		return err
	}
	name := "KeyValueOf" + xmlItemName(v.Type().Key()) + xmlItemName(v.Type().Elem())
	for _, e := range entries {
		fmt.Fprintf(b, "<%s><Key>", name)
		xml.EscapeText(b, []byte(e.key))
		b.WriteString("</Key>")
		if err := writeXMLElement(b, "Value", e.val); err != nil {
			return err
		}
		fmt.Fprintf(b, "</%s>", name)
	}
	return nil
}

// xmlItemName names the element of a list item of type t: the name the type
// gives itself (xmlNamer), else its Go name without type arguments, else
// the XML Schema name DataContract uses for a plain value.
func xmlItemName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Implements(xmlNamerType) {
		return reflect.Zero(t).Interface().(xmlNamer).xmlName()
	}
	if t.PkgPath() != "" { // a declared type, not a predeclared or unnamed one
		name, _, _ := strings.Cut(t.Name(), "[")
		return name
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64:
		return "long"
	case reflect.Int8:
		return "byte"
	case reflect.Int16:
		return "short"
	case reflect.Int32:
		return "int"
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		return "unsignedLong"
	case reflect.Uint8:
		return "unsignedByte"
	case reflect.Uint16:
		return "unsignedShort"
	case reflect.Uint32:
		return "unsignedInt"
	case reflect.Float32:
		return "float"
	case reflect.Float64:
		return "double"
	case reflect.Slice, reflect.Array:
		return "ArrayOf" + xmlItemName(t.Elem())
	}
	return "anyType"
}
