package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// member is one key of a JSON object, in document order.
type member struct {
	key string
	val json.RawMessage
}

// jsonKind names the JSON type of a raw value for error messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// decodeObject splits a JSON object into its members in document order. It
// rejects duplicate keys, which encoding/json would silently collapse.
func decodeObject(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("must be an object, not %s", jsonKind(raw))
	}
	var members []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errors.New("invalid JSON: object key is not a string")
		}
		if seen[key] {
			return nil, fmt.Errorf("duplicate key %q", key)
		}
		seen[key] = true
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, fmt.Errorf("invalid JSON: %w", err)
		}
		members = append(members, member{key: key, val: val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("invalid JSON: data after the top-level value")
	}
	return members, nil
}

// decodeArray splits a JSON array into its elements.
func decodeArray(raw json.RawMessage) ([]json.RawMessage, error) {
	if jsonKind(raw) != "an array" {
		return nil, fmt.Errorf("must be an array, not %s", jsonKind(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	return elems, nil
}

// decodeString decodes a JSON string.
func decodeString(raw json.RawMessage) (string, error) {
	if jsonKind(raw) != "a string" {
		return "", fmt.Errorf("must be a string, not %s", jsonKind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("invalid JSON: %w", err)
	}
	return s, nil
}

// decodeBool decodes a JSON boolean.
func decodeBool(raw json.RawMessage) (bool, error) {
	if jsonKind(raw) != "a boolean" {
		return false, fmt.Errorf("must be a boolean, not %s", jsonKind(raw))
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, fmt.Errorf("invalid JSON: %w", err)
	}
	return b, nil
}

// decodeValue decodes any JSON value with numbers as json.Number, the shape the
// JSON Schema validator and merge patch want. Trailing data is an error. It decodes
// as encoding/json's Decoder with UseNumber would (decodeWithDecoder, which gives
// the error for a document that is not JSON), without the Decoder's buffer and
// reflection: a decision decodes its input, its state and each event's data.
func decodeValue(raw []byte) (any, error) {
	if !json.Valid(raw) {
		return decodeWithDecoder(raw)
	}
	b := valueBuilder{doc: raw}
	return b.value(), nil
}

// valueBuilder builds the value of a document json.Valid accepted: objects as
// map[string]any (a repeated key keeps its last value), arrays as []any, numbers as
// json.Number, strings unescaped as encoding/json does.
type valueBuilder struct {
	doc []byte
	i   int
}

func (b *valueBuilder) space() { b.i = skipSpace(b.doc, b.i) }

// skipSpace returns the index of the first byte of doc at or after i that is not
// JSON white space.
func skipSpace(doc []byte, i int) int {
	for i < len(doc) {
		switch doc[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

func (b *valueBuilder) value() any {
	b.space()
	switch b.doc[b.i] {
	case '{':
		b.i++
		m := map[string]any{}
		b.space()
		if b.doc[b.i] == '}' {
			b.i++
			return m
		}
		for {
			b.space()
			k := b.str()
			b.space()
			b.i++ // :
			m[k] = b.value()
			b.space()
			b.i++ // , or }
			if b.doc[b.i-1] == '}' {
				return m
			}
		}
	case '[':
		b.i++
		a := []any{}
		b.space()
		if b.doc[b.i] == ']' {
			b.i++
			return a
		}
		for {
			a = append(a, b.value())
			b.space()
			b.i++ // , or ]
			if b.doc[b.i-1] == ']' {
				return a
			}
		}
	case '"':
		return b.str()
	case 't':
		b.i += 4
		return true
	case 'f':
		b.i += 5
		return false
	case 'n':
		b.i += 4
		return nil
	}
	start := b.i
	for b.i < len(b.doc) && strings.IndexByte("0123456789+-.eE", b.doc[b.i]) >= 0 {
		b.i++
	}
	return json.Number(b.doc[start:b.i])
}

// str reads a string: its bytes as they are when it has no escape and is valid UTF-8,
// else as encoding/json decodes it.
func (b *valueBuilder) str() string {
	start, plain := b.i, true
	for b.i++; b.doc[b.i] != '"'; b.i++ {
		switch c := b.doc[b.i]; {
		case c == '\\':
			plain = false
			b.i++
		case c >= utf8.RuneSelf:
			plain = false
		}
	}
	b.i++
	raw := b.doc[start:b.i]
	if plain || (utf8.Valid(raw) && bytes.IndexByte(raw, '\\') < 0) {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s) // a valid document's string: no error
	return s
}

// decodeWithDecoder is decodeValue by encoding/json's Decoder.
func decodeWithDecoder(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the top-level value")
	}
	return v, nil
}

// compactJSON returns raw without insignificant whitespace.
func compactJSON(raw []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Bounds of a JSON number CheckJSON accepts. A longer literal or a larger exponent
// is no float64 a workflow could mean, and turning it into an exact rational, as
// JSON Schema keywords such as minimum do, costs time that grows with both.
const (
	maxNumberLen   = 400
	maxExponentLen = 4
)

// CheckJSON checks a valid JSON document for what encoding/json accepts but a
// decision must not see: an object with the same key twice (the decision would
// see one value and the stored event both) and a number outside the float64
// range (too large, or not zero yet too small for a float64), longer than 400
// characters, or with an exponent of more than 4 digits. The error names the
// first such value by its JSON pointer. Call it on a document json.Valid
// accepts; on anything else it returns an error too.
func CheckJSON(doc []byte) error {
	_, err := scanJSON(doc)
	return err
}

// scanJSON is CheckJSON that also counts the document's values.
func scanJSON(doc []byte) (values int, err error) {
	s := &jsonScanner{doc: doc}
	s.space()
	if err := s.value(); err != nil {
		return 0, err
	}
	s.space()
	if s.i != len(s.doc) {
		return 0, errors.New("invalid JSON: data after the top-level value")
	}
	return s.values, nil
}

// JSONError is what CheckJSON found wrong and where: Path is a JSON pointer into
// the document ("" for the document itself).
type JSONError struct {
	Path    string
	Message string
}

// Error returns the message after the path.
func (e *JSONError) Error() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// jsonScanner walks a JSON document byte by byte; valid input is assumed, and any
// surprise is reported as invalid JSON. It keeps the path to the current value as
// segments and builds a pointer only for an error.
type jsonScanner struct {
	doc    []byte
	i      int
	values int
	path   []pathSeg
}

// pathSeg is an object key, or an array index when isIndex.
type pathSeg struct {
	key     string
	index   int
	isIndex bool
}

var errScanInvalid = errors.New("invalid JSON")

func (s *jsonScanner) fail(format string, args ...any) error {
	tokens := make([]string, len(s.path))
	for i, seg := range s.path {
		if seg.isIndex {
			tokens[i] = strconv.Itoa(seg.index)
		} else {
			tokens[i] = seg.key
		}
	}
	return &JSONError{Path: pointer("", tokens...), Message: fmt.Sprintf(format, args...)}
}

func (s *jsonScanner) space() { s.i = skipSpace(s.doc, s.i) }

func (s *jsonScanner) value() error {
	s.values++
	if s.i >= len(s.doc) {
		return errScanInvalid
	}
	switch c := s.doc[s.i]; {
	case c == '{':
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, err := s.str()
		return err
	case c == 't' || c == 'n':
		s.i += 4
	case c == 'f':
		s.i += 5
	default:
		return s.number()
	}
	return nil
}

func (s *jsonScanner) array() error {
	s.i++ // [
	s.space()
	if s.i < len(s.doc) && s.doc[s.i] == ']' {
		s.i++
		return nil
	}
	s.path = append(s.path, pathSeg{isIndex: true})
	defer func() { s.path = s.path[:len(s.path)-1] }()
	for n := 0; ; n++ {
		s.path[len(s.path)-1].index = n
		s.space()
		if err := s.value(); err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.doc) {
			return errScanInvalid
		}
		s.i++
		if s.doc[s.i-1] == ']' {
			return nil
		}
	}
}

func (s *jsonScanner) object() error {
	s.i++ // {
	s.space()
	if s.i < len(s.doc) && s.doc[s.i] == '}' {
		s.i++
		return nil
	}
	seen := map[string]struct{}{}
	s.path = append(s.path, pathSeg{})
	defer func() { s.path = s.path[:len(s.path)-1] }()
	for {
		s.space()
		key, err := s.str()
		if err != nil {
			return err
		}
		s.path[len(s.path)-1].key = key
		if _, dup := seen[key]; dup {
			return s.fail("duplicate key %q", key)
		}
		seen[key] = struct{}{}
		s.space()
		s.i++ // :
		s.space()
		if err := s.value(); err != nil {
			return err
		}
		s.space()
		if s.i >= len(s.doc) {
			return errScanInvalid
		}
		s.i++
		if s.doc[s.i-1] == '}' {
			return nil
		}
	}
}

// str reads a string and returns its value; escapes are decoded only when present,
// so "a" and "\u0061" are the same key.
func (s *jsonScanner) str() (string, error) {
	if s.i >= len(s.doc) || s.doc[s.i] != '"' {
		return "", errScanInvalid
	}
	start, escaped := s.i, false
	for s.i++; s.i < len(s.doc); s.i++ {
		switch s.doc[s.i] {
		case '\\':
			escaped = true
			s.i++
		case '"':
			s.i++
			raw := s.doc[start:s.i]
			if !escaped {
				return string(raw[1 : len(raw)-1]), nil
			}
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				return "", errScanInvalid
			}
			return v, nil
		}
	}
	return "", errScanInvalid
}

func (s *jsonScanner) number() error {
	start := s.i
	mantissaNonZero, exp := false, -1
	for ; s.i < len(s.doc); s.i++ {
		c := s.doc[s.i]
		switch {
		case c >= '1' && c <= '9':
			if exp < 0 {
				mantissaNonZero = true
			}
		case c == 'e' || c == 'E':
			exp = s.i + 1
		case c == '0' || c == '-' || c == '+' || c == '.':
		default:
			goto done
		}
	}
done:
	lit := string(s.doc[start:s.i])
	if lit == "" {
		return errScanInvalid
	}
	if len(lit) > maxNumberLen {
		return s.fail("number is %d characters long; the limit is %d", len(lit), maxNumberLen)
	}
	if exp >= 0 {
		digits := strings.TrimLeft(strings.TrimLeft(lit[exp-start:], "+-"), "0")
		if len(digits) > maxExponentLen {
			return s.fail("number %s is outside the range of a 64-bit float", lit)
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || (f == 0 && mantissaNonZero) {
		return s.fail("number %s is outside the range of a 64-bit float", lit)
	}
	return nil
}
