package fastjson

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// decodeStd is what fastjson stands in for: a Decoder with UseNumber that
// refuses anything after the value.
func decodeStd(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, &json.SyntaxError{}
	}
	return v, nil
}

func TestAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{
		`{"id":"a","amount":1.50,"tax":0,"big":123456789012345678901234567890.123456789}`,
		`{"amount":-0.000000001,"e":1e-7,"E":2E+3}`,
		`{"id":"a","ID":"b","id":"c"}`,
		`{"items":[{"id":"1","qty":2},{"id":"2","qty":null}],"account":{"name":"Ünïcødé — “quotes”"}}`,
		`{"s":"tab\tand\u00e9 and \ud83d\ude00 and \ud800 lone"}`,
		"{\"s\":\"invalid \xff\xfe utf-8\"}",
		`{"nested":{"deep":[[1,[2,[3]]]]},"t":true,"f":false}`,
		`null`,
		`[]`,
		`"text"`,
		` {"padded": 1} `,
	} {
		var got any
		err := Unmarshal([]byte(in), &got)
		want, werr := decodeStd([]byte(in))
		if werr != nil {
			t.Fatalf("encoding/json refused %q: %v", in, werr)
		}
		if err != nil {
			t.Errorf("Unmarshal(%q) refused what encoding/json accepts: %v", in, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Unmarshal(%q) = %#v, encoding/json gives %#v", in, got, want)
		}
	}
}

func TestRefusesWhatEncodingJSONRefuses(t *testing.T) {
	for _, in := range []string{
		``,
		`{`,
		`{"id":"a",}`,
		`{"id":"a"} {"id":"b"}`,
		`{"id":"a"} x`,
		"{\"id\":\"control \x01 char\"}",
		`{"n":01}`,
		`{"n":1.}`,
		`{'id':'a'}`,
		`{"s":"bad \x escape"}`,
		`[1,2`,
	} {
		if _, werr := decodeStd([]byte(in)); werr == nil {
			t.Fatalf("encoding/json accepts %q", in)
		}
		var v any
		if err := Unmarshal([]byte(in), &v); err == nil {
			t.Errorf("Unmarshal(%q) accepted what encoding/json refuses: %#v", in, v)
		}
	}
}

// The client reuses a page's body for the next page: the strings and raw
// messages it decodes may not point into it.
func TestCopiesStringsAndRawMessages(t *testing.T) {
	in := []byte(`{"nextPage":"cursor","data":[{"id":"abc","n":1.5}],"s":"text"}`)
	var page struct {
		NextPage *string           `json:"nextPage"`
		Data     []json.RawMessage `json:"data"`
	}
	var fields map[string]any
	if err := Unmarshal(in, &page); err != nil {
		t.Fatal(err)
	}
	if err := Unmarshal(in, &fields); err != nil {
		t.Fatal(err)
	}
	for i, b := range in {
		if !bytes.ContainsRune([]byte(`"{}[]:,.`), rune(b)) {
			in[i] = 'X'
		}
	}
	if *page.NextPage != "cursor" || string(page.Data[0]) != `{"id":"abc","n":1.5}` {
		t.Errorf("the page changed with its input: nextPage %q, data %s", *page.NextPage, page.Data[0])
	}
	if fields["s"] != "text" || fields["nextPage"] != "cursor" || fields["data"].([]any)[0].(map[string]any)["id"] != "abc" {
		t.Errorf("the strings changed with their input: %#v", fields)
	}
}
