package extract

import (
	"encoding/json"
	"testing"
)

// TestUnquoteIsEncodingJSON checks the fast path of a record's text fields
// against encoding/json: the same text, or an error where it has one.
func TestUnquoteIsEncodingJSON(t *testing.T) {
	literals := []string{
		`""`, `"INV-00001"`, `"Müller & Söhne GmbH"`, `"株式会社サンプル商事"`, `"Zoë's Café 🍰"`,
		`"Tab\tand\nnewline"`, `"quote \" inside"`, `"back\\slash"`, `"\u00e9t\u00e9"`, `"\ud83c\udf70"`,
		"\"raw\ttab\"", "\"bad \xff utf-8\"", "\"cut \xe6\x97\"", ` "padded" `, `"unterminated`, `"a" "b"`, `"`,
	}
	for _, lit := range literals {
		var want string
		wantErr := json.Unmarshal([]byte(lit), &want)
		got, err := unquote(json.RawMessage(lit))
		if (err != nil) != (wantErr != nil) || got != want {
			t.Errorf("unquote(%q) = %q, %v; encoding/json says %q, %v", lit, got, err, want, wantErr)
		}
	}
}
