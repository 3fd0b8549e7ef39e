// Package fastjson decodes the JSON that arrives in bulk (Object Query pages
// and their records, the ready lines the load posts) several times faster
// than encoding/json, with the same
// result for every input encoding/json accepts: numbers stay json.Number,
// field names match in any case, the last of a repeated name wins, and
// invalid UTF-8 becomes U+FFFD. It never explains a failure: a caller that
// gets an error decodes again with encoding/json, whose error names what is
// wrong, so error messages and the inputs refused are encoding/json's.
package fastjson

import (
	"unsafe"

	"github.com/bytedance/sonic"
)

// api is sonic set to agree with encoding/json: a Decoder with UseNumber,
// strings copied out of the input (a kept id must not pin its page), control
// characters in strings refused.
var api = sonic.Config{
	UseNumber:      true,
	CopyString:     true,
	ValidateString: true,
}.Froze()

// Unmarshal decodes data into v as a json.Decoder with UseNumber would,
// refusing anything after the value. Strings and raw messages in v are
// copies; a json.Number is a slice of data, so data must not change while v
// holds one. On error, v may hold part of data.
func Unmarshal(data []byte, v any) error {
	if len(data) == 0 {
		return api.UnmarshalFromString("", v)
	}
	// sonic reads a string: data is lent as one rather than copied whole
	// first, as sonic.Unmarshal would.
	return api.UnmarshalFromString(unsafe.String(&data[0], len(data)), v)
}
